"""Insurers and tenants' consents."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from portal.models.identity import User
from portal.models.insurer import Consent, ConsentScope, Insurer, InsurerUser
from portal.models.tenants import Tenant


async def add_insurer(
    session: AsyncSession, *, code: str, name_zh: str, name_en: str, uscc: str | None
) -> Insurer:
    insurer = Insurer(code=code, name_zh=name_zh, name_en=name_en, uscc=uscc)
    session.add(insurer)
    await session.flush()
    return insurer


async def add_insurer_user(session: AsyncSession, insurer: Insurer, user: User) -> None:
    session.add(InsurerUser(insurer_id=insurer.id, user_id=user.id))
    await session.flush()


async def grant_consent(
    session: AsyncSession, tenant: Tenant, insurer: Insurer, scope: ConsentScope
) -> Consent:
    consent = Consent(tenant_id=tenant.id, insurer_id=insurer.id, scope=scope)
    session.add(consent)
    await session.flush()
    return consent
