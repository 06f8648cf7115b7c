"""Public pages, no sign-in: the commitment board (三自主两公开一承诺) reached by the QR code posted at a
tenant's entrance, and the verification pages of signed documents (reached by the QR code on a report).

They show only what the regulation asks a unit to make public: the responsible person and the manager, the
year's commitment with its signature status, and the self-check status — no hazard details, no phone
numbers, no answers. Each signature is re-verified on every view against the audit chain
(``signing/verification.py``), and the key it was made with is shown by its fingerprint and registration
date. Reads run in a scope of the one tenant concerned; the system scope (logged) is used only to find that
tenant from a document id (one column) and to read the signer's passkey registration from the platform
audit chain (one entry). Unknown ids answer 404, like foreign ones elsewhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.tenancy import Scope
from portal.core.web import page
from portal.identity import access
from portal.models.selfcheck import Commitment, DocumentType, SelfCheck, Signature
from portal.models.tenants import MemberRole, Tenant
from portal.selfcheck.board import services as board
from portal.selfcheck.commitments import services as commitments
from portal.selfcheck.commitments.routes import this_year
from portal.selfcheck.deadlines import period_of, previous_period
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing import services as signing
from portal.selfcheck.signing.verification import Verification
from portal.tenants import services as tenant_services


@dataclass(frozen=True)
class PeriodStatus:
    period: str
    selfcheck: SelfCheck | None
    verification: Verification | None


async def _period_status(session: AsyncSession, tenant: Tenant, period: str) -> PeriodStatus:
    sc = (
        await session.execute(
            select(SelfCheck).where(SelfCheck.tenant_id == tenant.id, SelfCheck.period == period)
        )
    ).scalar_one_or_none()
    if sc is None:
        return PeriodStatus(period, None, None)
    check = await reports.verify_report(session, sc.id)
    return PeriodStatus(period, sc, check.verification if check else None)


async def _tenant_of(
    request: Request, model: type[SelfCheck] | type[Commitment], doc_id: uuid.UUID
) -> uuid.UUID:
    tenant_id = await board.tenant_of_document(request.app.state.db, model, doc_id)
    if tenant_id is None:
        raise NotFoundException()
    return tenant_id


class PublicPages(Controller):
    path = "/"
    include_in_schema = False
    opt = access.public()  # rate-limited per client like every public route

    @get("/board/{tenant_id:uuid}")
    async def board(self, request: Request, tenant_id: FromPath[uuid.UUID]) -> Template:
        async with request.app.state.db.session(Scope.tenant(tenant_id)) as s:
            tenant = await tenant_services.get_tenant(s, tenant_id)
            if tenant is None or not tenant.active:
                raise NotFoundException()
            people = sorted(  # the responsible person first: the one the regulation names
                (
                    p
                    for p in await tenant_services.roster(s, tenant.id)
                    if p.role in (MemberRole.RESPONSIBLE, MemberRole.MANAGER)
                ),
                key=lambda p: p.role is not MemberRole.RESPONSIBLE,
            )
            now = datetime.now(UTC)
            year = this_year(request)
            c = await commitments.for_year(s, tenant.id, year)
            commitment_check = await commitments.verify_commitment(s, c) if c else None
            this_period = period_of(now)
            periods = [
                await _period_status(s, tenant, this_period),
                await _period_status(s, tenant, previous_period(this_period)),
            ]
        return page(
            request,
            "selfcheck/board.html",
            tenant=tenant,
            people=people,
            year=year,
            commitment=c,
            commitment_check=commitment_check,
            periods=periods,
        )

    @get("/verify/report/{selfcheck_id:uuid}")
    async def verify_report(self, request: Request, selfcheck_id: FromPath[uuid.UUID]) -> Template:
        tenant_id = await _tenant_of(request, SelfCheck, selfcheck_id)
        async with request.app.state.db.session(Scope.tenant(tenant_id)) as s:
            check = await reports.verify_report(s, selfcheck_id)
            if check is None:
                raise NotFoundException()
            signature = await signing.signature_of(s, DocumentType.MONTHLY_REPORT, selfcheck_id)
        return page(
            request,
            "selfcheck/verify.html",
            kind="report",
            tenant=check.tenant,
            selfcheck=check.selfcheck,
            verification=check.verification,
            signature=signature,
        )

    @get("/verify/commitment/{commitment_id:uuid}")
    async def verify_commitment(self, request: Request, commitment_id: FromPath[uuid.UUID]) -> Template:
        tenant_id = await _tenant_of(request, Commitment, commitment_id)
        async with request.app.state.db.session(Scope.tenant(tenant_id)) as s:
            c = await s.get(Commitment, commitment_id)
            if c is None:
                raise NotFoundException()
            check = await commitments.verify_commitment(s, c)
            signature: Signature | None = await signing.signature_of(s, DocumentType.COMMITMENT, c.id)
        return page(
            request,
            "selfcheck/verify.html",
            kind="commitment",
            tenant=check.tenant,
            commitment=c,
            verification=check.verification,
            signature=signature,
        )
