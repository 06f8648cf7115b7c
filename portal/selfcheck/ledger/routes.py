"""The tenant's accountability ledger page: entries, open first, with kind, person, step and age."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from portal.core.i18n import _
from portal.core.web import DB, page
from portal.identity import reads
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.selfcheck import policies
from portal.selfcheck.ledger import services as accountability
from portal.tenants import services as tenant_services

# The unit's manager and responsible person; the regulator of the subtree and the warden of the grid (the
# scope decides which tenants those see: another tenant is a 404).


class AccountabilityPages(Controller):
    path = "/t/{tenant_id:uuid}/accountability"
    include_in_schema = False

    @get("/", opt=policies.LEDGER_PAGE)
    async def ledger(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        require_principal(principal)
        tenant = await tenant_services.get_tenant(db, tenant_id)
        if tenant is None:
            raise NotFoundException()
        reads.note(request, page="ledger")
        return page(
            request,
            "selfcheck/accountability.html",
            tenant=tenant,
            rows=await accountability.ledger(db, tenant.id),
            now=datetime.now(UTC),
            kinds={k: _(v) for k, v in accountability.KIND_LABELS.items()},
            steps={k: _(v) for k, v in accountability.STEP_LABELS.items()},
        )
