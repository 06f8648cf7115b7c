"""Opening a month's self-check for a tests' tenant, as the monthly job does; submitting one; signing a
document over HTTP with a software authenticator."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.softauthn import SoftAuthenticator
from portal.models.selfcheck import Answer, SelfCheck
from portal.models.tenants import Tenant
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.monthly import services as sc_services
from tests.identity.helpers import post_json


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


async def submitted_selfcheck(
    database: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, period: str
) -> SelfCheck:
    """A self-check answered through the services (the second item failed, "灭火器过期") and submitted."""
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
        tenant = await s.get(Tenant, tenant_id)
        assert tenant is not None
        sc = await sc_services.ensure_selfcheck(s, tenant, period)
        assert sc is not None
        sc = await sc_services.load(s, sc.id)
        assert sc is not None
        for i, item in enumerate(sc.checklist.items):
            failed = i == 1
            await sc_services.answer(
                s,
                sc,
                item.code,
                Answer.FAIL if failed else Answer.PASS,
                note="灭火器过期" if failed else "",
                user_id=user_id,
            )
        await sc_services.submit(s, sc, tenant, user_id=user_id)
        return sc


async def sign_over_http(
    client: AsyncTestClient, soft: SoftAuthenticator, base: str, **answer: Any
) -> tuple[int, dict[str, Any]]:
    """Ask ``{base}/options``, answer with ``soft`` (``answer``: its knobs for a bad answer), post to
    ``base``: the status and JSON body of whichever step answered last."""
    options = await post_json(client, f"{base}/options")
    if options.status_code != 200:
        return options.status_code, options.json()
    credential = soft.get(options.json()["publicKey"], **answer)
    signed = await post_json(client, base, {"credential": credential})
    return signed.status_code, signed.json()
