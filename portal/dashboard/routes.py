"""The tenant's home page: its dashboard (this month, hazards, patrols, the ledger, the 12-month chart) and
its roster. It reads several domains, so it sits above them. Parse, authorise (by scope), read, render."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.pages import policies as audit_policies
from portal.core.i18n import _
from portal.core.web import DB, page
from portal.dashboard import charts
from portal.dashboard import services as dashboard
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import ContextKind, Principal
from portal.invitations import policies as invitation_policies
from portal.models.tenants import Tenant
from portal.selfcheck import policies as cycle_policies
from portal.selfcheck.ledger import services as accountability
from portal.tenants import policies as tenant_policies
from portal.tenants import services


@dataclass(frozen=True)
class HomeData:
    tenant: Tenant
    members: list[services.RosterEntry]
    dash: dashboard.Dashboard


async def home_data(db: AsyncSession, me: Principal, tenant_id: uuid.UUID) -> HomeData | None:
    """Everything the tenant's home page reads from the database (``None``: foreign or missing).

    Apart from the route so that ``bench/tenancy.py`` times exactly the page's queries, not a copy of them.
    """
    tenant = await services.get_tenant(db, tenant_id)
    if tenant is None:
        return None
    members = await services.roster(db, tenant.id)
    # Each part of the dashboard is shown to whoever may open the page it links to.
    figures = await dashboard.build(db, tenant, with_ledger=cycle_policies.may_read_ledger(me))
    return HomeData(tenant, members, figures)


class DashboardPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/t/{tenant_id:uuid}", opt=tenant_policies.TENANT_PAGE)
    async def tenant_home(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        me = require_principal(principal)
        data = await home_data(db, me, tenant_id)
        if data is None:
            raise NotFoundException()  # foreign or missing: the same answer (no existence oracle)
        return page(
            request,
            "dashboard/home.html",
            tenant=data.tenant,
            members=data.members,
            dash=data.dash,
            chart=charts.compliance_chart(data.dash.months, described_by=charts.TABLE_ID),
            outcome_names=charts.outcome_names(),
            kinds={k: _(v) for k, v in accountability.KIND_LABELS.items()},
            steps={k: _(v) for k, v in accountability.STEP_LABELS.items()},
            can_manage_roster=tenant_policies.may_manage_roster(me.member_roles),
            can_read_ledger=cycle_policies.may_read_ledger(me),
            can_read_audit=audit_policies.may_read_audit(me),
            can_invite=invitation_policies.may_invite(me),
            is_member=me.kind is ContextKind.MEMBER,
        )
