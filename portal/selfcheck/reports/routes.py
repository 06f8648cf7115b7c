"""The self-check report as a PDF download: parse, authorise (as the self-check pages), build, answer."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.i18n import N_, _
from portal.core.storage import ObjectStorage, content_disposition
from portal.core.web import DB, page
from portal.identity import reads
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import Principal
from portal.models.selfcheck import SelfCheck
from portal.models.tenants import Tenant
from portal.selfcheck.monthly import services
from portal.selfcheck.policies import CYCLE_PAGES
from portal.selfcheck.reports import pdf as report_pdf
from portal.tenants import services as tenant_services

REFUSALS = {
    "not_submitted": N_(
        "The report exists once the self-check is submitted. Answer every item and submit it first."
    ),
}


async def _selfcheck(
    db: AsyncSession, principal: Principal | None, tenant_id: uuid.UUID, selfcheck_id: uuid.UUID
) -> tuple[Principal, Tenant, SelfCheck]:
    me = require_principal(principal)
    tenant = await tenant_services.get_tenant(db, tenant_id)
    if tenant is None:
        raise NotFoundException()
    sc = await services.load(db, selfcheck_id)
    if sc is None or sc.tenant_id != tenant.id:
        raise NotFoundException()  # another tenant's or missing: the same answer
    return me, tenant, sc


class SelfCheckReportController(Controller):
    path = "/t/{tenant_id:uuid}/selfchecks"
    include_in_schema = False
    opt = CYCLE_PAGES  # whoever reads the self-check page may take its report away

    @get("/{selfcheck_id:uuid}/report.pdf")
    async def report_pdf(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
    ) -> Response[bytes] | Template:
        _me, tenant, sc = await _selfcheck(db, principal, tenant_id, selfcheck_id)
        settings = request.app.state.settings
        storage: ObjectStorage = request.app.state.storage
        engine = request.app.template_engine
        assert isinstance(engine, JinjaTemplateEngine)
        try:
            filename, pdf = await report_pdf.build(
                db,
                storage,
                engine.engine,
                tenant,
                sc,
                base_url=settings.base_url,
                timezone=settings.display_timezone,
            )
        except report_pdf.ReportRefused as exc:
            return page(request, "error.html", status_code=409, status=409, message=_(REFUSALS[exc.code]))
        # A document leaving the portal: the read from outside the tenant says which.
        reads.note(request, page="selfcheck_report", period=sc.period)
        return Response(
            content=pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": content_disposition(filename),
                # Names, addresses and photos: not for shared caches, not kept by the browser's cache.
                "Cache-Control": "private, no-store",
            },
        )
