"""The tenant list and the tenancy JSON API. Parse, authorise (by scope), call a service, render."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from portal.core.web import DB, page
from portal.identity import access
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.reads import TENANT_LIST_READ, record_cross_tenant_read
from portal.models.tenants import Tenant
from portal.tenants import policies, services
from portal.tenants.schemas import TenantOut, TenantPage

PAGE_SIZE = 25
# Who may ask at all (the scope then decides which tenants they see; another tenant's id is a 404).
IN_SCOPE = access.member() | access.cross_tenant()


def _out(t: Tenant) -> TenantOut:
    return TenantOut(
        id=t.id,
        code=t.code,
        kind=t.kind.value,
        category=t.category.value if t.category else None,
        name_zh=t.name_zh,
        name_en=t.name_en,
        address=t.address,
        jurisdiction_code=t.jurisdiction_path.rstrip("/").rsplit("/", 1)[-1],
        readiness=t.readiness,
    )


class TenantPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/tenants", opt=IN_SCOPE)
    async def tenant_list(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        q: FromQuery[str | None] = None,
        page_no: Annotated[int, QueryParameter(name="page", ge=1, le=100_000)] = 1,
    ) -> Template:
        me = require_principal(principal)
        tenants, total = await services.list_tenants(
            db, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE, q=q
        )
        await record_cross_tenant_read(
            db, principal, [t.id for t in tenants], TENANT_LIST_READ, detail={"via": "web"}
        )
        pages = max(1, -(-total // PAGE_SIZE))
        return page(
            request,
            "tenants/list.html",
            fragment="tenants/_rows_fragment.html",
            tenants=tenants,
            total=total,
            page_no=page_no,
            pages=pages,
            q=q or "",
            can_open_tenant=policies.may_open_tenant_page(me),
        )


class TenantApi(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]  # noqa: RUF012  (Litestar declares it as a plain attribute)
    # People in scope with a session, and insurers' systems with a key (their consenting tenants).
    opt = IN_SCOPE | access.api_key()

    @get("/{tenant_id:uuid}", summary="One tenant in the caller's scope (404 outside it)")
    async def get_tenant(
        self, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> TenantOut:
        require_principal(principal)
        tenant = await services.get_tenant(db, tenant_id)
        if tenant is None:
            raise NotFoundException()
        return _out(tenant)

    @get("/", summary="Tenants in the caller's scope, paginated")
    async def list_tenants(
        self,
        db: DB,
        principal: CurrentPrincipal,
        offset: Annotated[int, QueryParameter(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> TenantPage:
        require_principal(principal)
        rows, total = await services.list_tenants(db, offset=offset, limit=limit)
        await record_cross_tenant_read(
            db, principal, [t.id for t in rows], TENANT_LIST_READ, detail={"via": "api"}
        )
        return TenantPage(items=[_out(t) for t in rows], total=total, offset=offset, limit=limit)
