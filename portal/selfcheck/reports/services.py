"""The monthly report as a signed document: the responsible person signs the frozen report with a passkey,
and anyone (the CLI, the public verification page) can re-check it later.

The report is the canonical JSON of a submitted self-check (``services.canonical_report``); its SHA-256 was
fixed at submission, in the ``selfcheck.submitted`` audit entry too. Signing re-computes it first: if the
stored answers no longer hash to the frozen value, nothing is signed. The ``selfcheck.signed`` entry records
which registered passkey signed it, and re-verification checks the stored signature against both entries
(``signing/verification.py``). Signing resolves the ledger entries the signature fixes (an overdue
self-check) at once, not at the next daily run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from portal.config import Settings
from portal.identity.ceremonies import Ceremony
from portal.models.identity import User
from portal.models.selfcheck import DocumentType, SelfCheck, Signature
from portal.models.tenants import Tenant
from portal.selfcheck import policies
from portal.selfcheck.ledger import services as accountability
from portal.selfcheck.monthly import services
from portal.selfcheck.signing import services as signing
from portal.selfcheck.signing.verification import Trail, Verification, verify_signature
from portal.tenants.services import roles_of

TRAIL = Trail("selfcheck", fixed_by="selfcheck.submitted", signed_by="selfcheck.signed")


def document_of(sc: SelfCheck) -> signing.Document:
    if sc.report_sha256 is None:
        raise services.SelfCheckRefused("not_submitted")
    return signing.Document(DocumentType.MONTHLY_REPORT, sc.id, sc.tenant_id, sc.report_sha256)


async def current_hash(session: AsyncSession, sc: SelfCheck, tenant: Tenant) -> str:
    """The hash of the report as the database holds it now (equals the frozen one unless tampered with)."""
    return await services.frozen_hash(session, sc, tenant)


async def check_signable(session: AsyncSession, sc: SelfCheck, tenant: Tenant, signer_id: uuid.UUID) -> None:
    """Refuse early (before any passkey prompt) what :func:`sign_report` would refuse."""
    refused = policies.why_not_sign_report(await roles_of(session, sc.tenant_id, signer_id), sc)
    if refused is not None:
        raise services.SelfCheckRefused(refused)
    if await current_hash(session, sc, tenant) != sc.report_sha256:
        raise services.SelfCheckRefused("report_changed")


async def sign_report(
    session: AsyncSession,
    settings: Settings,
    ceremony: Ceremony,
    credential: Any,
    *,
    sc: SelfCheck,
    tenant: Tenant,
    signer: User,
    now: datetime | None = None,
) -> Signature:
    """Verify and store the responsible person's signature; the self-check becomes ``signed``."""
    now = now or datetime.now(UTC)
    await check_signable(session, sc, tenant, signer.id)
    signed = await signing.sign(
        session, settings, ceremony, credential, document=document_of(sc), signer=signer, now=now
    )
    await services.mark_signed(
        session,
        sc,
        user_id=signer.id,
        signed_sha256=signed.signature.sha256,
        evidence=signed.evidence,
        now=now,
    )
    await accountability.resolve_fixed(session, now, tenant_ids=[tenant.id])
    return signed.signature


@dataclass(frozen=True)
class ReportCheck:
    """A self-check with its tenant and, if it was signed, the re-verification of the signature."""

    selfcheck: SelfCheck
    tenant: Tenant
    verification: Verification | None  # None: not signed


async def verify_report(session: AsyncSession, selfcheck_id: uuid.UUID) -> ReportCheck | None:
    """Re-check a report's signature against the audit chain and the report as stored now (``None``: no
    such report in scope)."""
    sc = await services.load(session, selfcheck_id)
    if sc is None:
        return None
    tenant = await session.get(Tenant, sc.tenant_id)
    assert tenant is not None
    return ReportCheck(sc, tenant, await verification_of(session, sc, tenant))


async def verification_of(session: AsyncSession, sc: SelfCheck, tenant: Tenant) -> Verification | None:
    """The re-verification of a loaded report's signature (``None``: not signed)."""
    signature = await signing.signature_of(session, DocumentType.MONTHLY_REPORT, sc.id)
    if signature is None:
        return None
    current = await current_hash(session, sc, tenant)
    return await verify_signature(session, signature, current, TRAIL)
