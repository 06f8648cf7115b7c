"""消防安全承诺书: the responsible person's yearly commitment, signed with a passkey.

A manager or the responsible person *prepares* the year's commitment: the template (``data/commitment.yaml``)
filled with the tenant's and the responsible person's names, fixed and hashed. Only that responsible person
signs it; a prepared commitment may be prepared again (e.g. after the responsible person changed) until it
is signed, never after. The public board shows it with its signature status, re-verified on every view
against the audit chain: the hash of the last ``commitment.prepared`` before the signing, and the
``commitment.signed`` entry that records which registered passkey signed it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.config import Settings
from portal.core.errors import NotAllowed, Refused
from portal.core.i18n import _
from portal.identity.ceremonies import Ceremony
from portal.models.identity import User
from portal.models.selfcheck import Commitment, CommitmentStatus, DocumentType, Signature
from portal.models.tenants import MemberRole, Membership, Tenant
from portal.selfcheck import policies
from portal.selfcheck.signing import services as signing
from portal.selfcheck.signing.verification import Trail, Verification, verify_signature
from portal.tenants.services import roles_of

TRAIL = Trail("commitment", fixed_by="commitment.prepared", signed_by="commitment.signed")


class CommitmentRefused(Refused):
    """A refused step; ``code`` names it for a translated message."""


@cache
def _template() -> dict[str, str]:
    text = resources.files("portal.selfcheck.commitments").joinpath("data/commitment.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {"zh": data["zh"].strip(), "en": data["en"].strip()}


def canonical(c: Commitment, tenant: Tenant) -> dict[str, object]:
    """The signed content of a commitment: the filled text in both languages and who it binds."""
    return {
        "type": "annual-commitment",
        "tenant": {"id": str(tenant.id), "code": tenant.code, "name": tenant.name_zh, "uscc": tenant.uscc},
        "year": c.year,
        "responsible": {
            "id": str(c.responsible_id) if c.responsible_id else None,
            "name": c.responsible_name,
        },
        "text_zh": c.text_zh,
        "text_en": c.text_en,
    }


async def for_year(session: AsyncSession, tenant_id: uuid.UUID, year: int) -> Commitment | None:
    return (
        await session.execute(
            select(Commitment).where(Commitment.tenant_id == tenant_id, Commitment.year == year)
        )
    ).scalar_one_or_none()


async def _responsible(session: AsyncSession, tenant_id: uuid.UUID) -> User | None:
    """The tenant's responsible person (the longest-standing one, should there be several)."""
    return (
        await session.execute(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == tenant_id, Membership.role == MemberRole.RESPONSIBLE)
            .order_by(Membership.created_at)
            .limit(1)
        )
    ).scalar_one_or_none()


async def prepare(
    session: AsyncSession, tenant: Tenant, *, year: int, prepared_by: uuid.UUID, now: datetime | None = None
) -> Commitment:
    """Fix this year's text for the current responsible person (again, if not signed yet)."""
    if not policies.may_prepare_commitment(await roles_of(session, tenant.id, prepared_by)):
        raise NotAllowed(_(policies.ONLY_ANSWERABLE_PREPARE))
    now = now or datetime.now(UTC)
    responsible = await _responsible(session, tenant.id)
    if responsible is None:
        raise CommitmentRefused("no_responsible")
    c = await for_year(session, tenant.id, year)
    if c is not None and c.status is CommitmentStatus.SIGNED:
        raise CommitmentRefused("already_signed")
    names = {"tenant": tenant.name_zh, "responsible": responsible.display_name, "year": year}
    names_en = {**names, "tenant": tenant.name_en or tenant.name_zh}
    if c is None:
        c = Commitment(tenant_id=tenant.id, year=year, status=CommitmentStatus.PREPARED)
        session.add(c)
    c.responsible_id = responsible.id
    c.responsible_name = responsible.display_name
    c.text_zh = _template()["zh"].format(**names)
    c.text_en = _template()["en"].format(**names_en)
    c.prepared_at = now
    c.prepared_by_id = prepared_by
    c.sha256 = signing.canonical_hash(canonical(c, tenant))
    await session.flush()
    await audit.record(
        session,
        "commitment.prepared",
        tenant_id=tenant.id,
        object_type="commitment",
        object_id=c.id,
        detail={"year": year, "responsible": c.responsible_name, "sha256": c.sha256},
    )
    return c


def document_of(c: Commitment) -> signing.Document:
    return signing.Document(DocumentType.COMMITMENT, c.id, c.tenant_id, c.sha256)


async def check_signable(session: AsyncSession, c: Commitment, tenant: Tenant, signer_id: uuid.UUID) -> None:
    """Refuse early (before any passkey prompt) what :func:`sign_commitment` would refuse."""
    refused = policies.why_not_sign_commitment(signer_id, await roles_of(session, tenant.id, signer_id), c)
    if refused is not None:
        raise CommitmentRefused(refused)
    if signing.canonical_hash(canonical(c, tenant)) != c.sha256:
        raise CommitmentRefused("changed")


async def sign_commitment(
    session: AsyncSession,
    settings: Settings,
    ceremony: Ceremony,
    credential: Any,
    *,
    commitment: Commitment,
    tenant: Tenant,
    signer: User,
    now: datetime | None = None,
) -> Signature:
    now = now or datetime.now(UTC)
    await check_signable(session, commitment, tenant, signer.id)
    signed = await signing.sign(
        session, settings, ceremony, credential, document=document_of(commitment), signer=signer, now=now
    )
    commitment.status = CommitmentStatus.SIGNED
    commitment.signed_at = now
    await session.flush()
    await audit.record(
        session,
        "commitment.signed",
        tenant_id=tenant.id,
        object_type="commitment",
        object_id=commitment.id,
        detail={"year": commitment.year, "sha256": commitment.sha256, "signature": signed.evidence},
    )
    return signed.signature


@dataclass(frozen=True)
class CommitmentCheck:
    commitment: Commitment
    tenant: Tenant
    verification: Verification | None  # None: not signed


async def verify_commitment(session: AsyncSession, commitment: Commitment) -> CommitmentCheck:
    tenant = await session.get(Tenant, commitment.tenant_id)
    assert tenant is not None
    signature = await signing.signature_of(session, DocumentType.COMMITMENT, commitment.id)
    if signature is None:
        return CommitmentCheck(commitment, tenant, None)
    current = signing.canonical_hash(canonical(commitment, tenant))
    return CommitmentCheck(commitment, tenant, await verify_signature(session, signature, current, TRAIL))
