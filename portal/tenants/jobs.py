"""Periodic jobs of the tenancy core."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import outbox
from portal.models.tenants import Tenant
from portal.tenants.services import READINESS_TOPIC


async def nightly_readiness(session: AsyncSession, period_key: str) -> None:
    """Nightly safety net: recompute every active tenant's readiness (through the outbox, one row each)."""
    for tid in (await session.execute(select(Tenant.id).where(Tenant.active.is_(True)))).scalars():
        await outbox.emit(
            session, READINESS_TOPIC, {"tenant_id": str(tid), "period": period_key}, tenant_id=tid
        )
