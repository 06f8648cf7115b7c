"""Signing the monthly report with a passkey: the shared endpoints of ``signing/routes.py`` at the report's
address, for the unit's responsible person."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from portal.core.web import DB
from portal.identity import access
from portal.identity.ceremonies import CEREMONY_BODY_MAX, Ceremony
from portal.identity.dependencies import CurrentPrincipal
from portal.identity.passkey_schemas import CredentialSubmission
from portal.models.identity import User
from portal.selfcheck.monthly import services
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing import routes as signing_routes
from portal.tenants import services as tenant_services


class ReportSigning(Controller):
    path = "/t/{tenant_id:uuid}/selfchecks/{selfcheck_id:uuid}/sign"
    include_in_schema = False
    # Any member may ask; the service refuses everyone but the responsible person with a clear message.
    opt = access.member()
    request_max_body_size = CEREMONY_BODY_MAX

    async def _signable(
        self, request: Request, db: DB, tenant_id: uuid.UUID, selfcheck_id: uuid.UUID
    ) -> signing_routes.Signable:
        tenant = await tenant_services.get_tenant(db, tenant_id)
        sc = await services.load(db, selfcheck_id) if tenant else None
        if tenant is None or sc is None or sc.tenant_id != tenant.id:
            raise NotFoundException()

        async def check(signer: User) -> None:
            await reports.check_signable(db, sc, tenant, signer.id)

        async def sign(ceremony: Ceremony, credential: Any, signer: User) -> object:
            settings = request.app.state.settings
            return await reports.sign_report(
                db, settings, ceremony, credential, sc=sc, tenant=tenant, signer=signer
            )

        return signing_routes.Signable(
            document=lambda: reports.document_of(sc),
            check=check,
            sign=sign,
            done=f"/t/{tenant.id}/selfchecks/{sc.id}",
        )

    @post("/options", status_code=200)
    async def options(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
    ) -> Response[dict[str, Any]]:
        signer = await signing_routes.load_signer(db, principal)
        signable = await self._signable(request, db, tenant_id, selfcheck_id)
        return await signing_routes.start(request, db, signer, signable)

    @post("/", status_code=200)
    async def sign(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
        data: JSONBody[CredentialSubmission],
    ) -> Response[dict[str, Any]]:
        signer = await signing_routes.load_signer(db, principal)
        signable = await self._signable(request, db, tenant_id, selfcheck_id)
        return await signing_routes.finish(request, signer, data.credential, signable)
