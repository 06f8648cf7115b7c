"""Opening a month's self-check for a tests' tenant, as the monthly job does."""

from __future__ import annotations

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.selfcheck import SelfCheck
from portal.models.tenants import Tenant
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.monthly import services as sc_services


async def open_selfcheck(database: Database, tenant: Tenant, period: str) -> tuple[SelfCheck, Tenant]:
    """The catalogue loaded, and ``tenant``'s self-check of ``period`` (the same one every call)."""
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
    async with database.session(Scope.tenant(tenant.id)) as s:
        t = await s.get(Tenant, tenant.id)
        assert t is not None
        sc = await sc_services.ensure_selfcheck(s, t, period)
        assert sc is not None
        return sc, t
