"""The year's commitment (承诺书): prepared by a manager or the responsible person, signed by the
responsible person with a passkey, and the printable poster whose QR code opens the public board."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import segno
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, JSONBody
from litestar.response import Redirect, Template

from portal.core.i18n import _
from portal.core.web import DB, page
from portal.identity import access
from portal.identity.ceremonies import CEREMONY_BODY_MAX, PasskeyError, take_ceremony
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.passkey_routes import passkey_error, pop_ceremony
from portal.identity.passkey_schemas import CredentialSubmission
from portal.identity.passkeys import SESSION_KEY
from portal.models.selfcheck import Commitment
from portal.models.tenants import Tenant
from portal.selfcheck import policies
from portal.selfcheck.commitments import services as commitments
from portal.selfcheck.reports.signing_routes import SIGN_REFUSALS, load_signer, refusal
from portal.selfcheck.signing import services as signing
from portal.tenants import policies as tenant_policies
from portal.tenants import services as tenant_services

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


def this_year(request: Request) -> int:
    return datetime.now(UTC).astimezone(ZoneInfo(request.app.state.settings.display_timezone)).year


def board_url(request: Request, tenant_id: uuid.UUID) -> str:
    return f"{request.app.state.settings.base_url.rstrip('/')}/board/{tenant_id}"


class CommitmentPages(Controller):
    path = "/t/{tenant_id:uuid}"
    include_in_schema = False
    opt = access.member()

    async def _tenant(self, db: DB, tenant_id: uuid.UUID) -> Tenant:
        tenant = await tenant_services.get_tenant(db, tenant_id)
        if tenant is None:
            raise NotFoundException()
        return tenant

    async def _page(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant: Tenant,
        *,
        error: str = "",
        status=200,
    ) -> Template:
        me = require_principal(principal)
        roles = await tenant_services.roles_of(db, tenant.id, me.user_id)
        year = this_year(request)
        c = await commitments.for_year(db, tenant.id, year)
        check = await commitments.verify_commitment(db, c) if c else None
        can_sign = policies.may_sign_commitment(me.user_id, roles, c)
        return page(
            request,
            "selfcheck/commitment.html",
            status_code=status,
            tenant=tenant,
            year=year,
            commitment=c,
            check=check,
            can_prepare=policies.may_prepare_commitment(roles, c),
            can_edit_board=tenant_policies.may_edit_public_board(roles),
            can_sign=can_sign,
            has_passkey=can_sign and bool(await signing.signer_credentials(db, me.user_id)),
            error=error,
        )

    @get("/commitment")
    async def show(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        return await self._page(request, db, principal, await self._tenant(db, tenant_id))

    @post("/commitment/prepare")
    async def prepare(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template | Redirect:
        me = require_principal(principal)
        tenant = await self._tenant(db, tenant_id)
        try:
            await commitments.prepare(db, tenant, year=this_year(request), prepared_by=me.user_id)
        except commitments.CommitmentRefused as exc:
            return await self._page(
                request, db, principal, tenant, error=_(SIGN_REFUSALS[exc.code]), status=409
            )
        return Redirect(path=f"/t/{tenant.id}/commitment", status_code=303)

    async def _commitment(self, request: Request, db: DB, tenant: Tenant) -> Commitment:
        c = await commitments.for_year(db, tenant.id, this_year(request))
        if c is None:
            raise NotFoundException()
        return c

    @post("/commitment/sign/options", status_code=200, request_max_body_size=CEREMONY_BODY_MAX)
    async def sign_options(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Response[dict[str, Any]]:
        signer = await load_signer(db, principal)
        tenant = await self._tenant(db, tenant_id)
        c = await self._commitment(request, db, tenant)
        try:
            await commitments.check_signable(db, c, tenant, signer.id)
        except commitments.CommitmentRefused as exc:
            raise refusal(exc.code, 403 if exc.code == "only_responsible_signs" else 409) from None
        credentials = await signing.signer_credentials(db, signer.id)
        if not credentials:
            raise refusal("no_passkey")
        options, ceremony = signing.signing_options(
            request.app.state.settings, commitments.document_of(c), credentials
        )
        request.session[SESSION_KEY] = ceremony.to_session()
        return Response({"publicKey": options})

    @post("/commitment/sign", status_code=200, request_max_body_size=CEREMONY_BODY_MAX)
    async def sign(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[CredentialSubmission],
    ) -> Response[dict[str, Any]]:
        signer = await load_signer(db, principal)
        tenant = await self._tenant(db, tenant_id)
        c = await self._commitment(request, db, tenant)
        raw = pop_ceremony(request)
        try:
            await commitments.check_signable(db, c, tenant, signer.id)
            ceremony = take_ceremony(raw, signing.PURPOSE, binding=commitments.document_of(c).binding)
            await commitments.sign_commitment(
                db,
                request.app.state.settings,
                ceremony,
                data.credential,
                commitment=c,
                tenant=tenant,
                signer=signer,
            )
        except commitments.CommitmentRefused as exc:
            raise refusal(exc.code, 403 if exc.code == "only_responsible_signs" else 409) from None
        except PasskeyError as exc:
            raise passkey_error(exc) from None
        return Response({"redirect": f"/t/{tenant.id}/commitment"})

    @post("/board/phone")
    async def board_phone(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, Any], FORM],
    ) -> Template | Redirect:
        """Publish (or withdraw) the contact phone on the public board: the tenant's choice, opt-in."""
        me = require_principal(principal)
        tenant = await self._tenant(db, tenant_id)
        try:
            await tenant_services.set_public_phone(db, tenant, me.user_id, str(data.get("phone", "")))
        except tenant_services.PhoneRefused:
            return await self._page(
                request,
                db,
                principal,
                tenant,
                error=_(
                    "Enter a mainland mobile number (11 digits), a landline with its area code "
                    "(e.g. 0571-87654321) or a 400/800 number — or leave it empty to show none."
                ),
                status=422,
            )
        return Redirect(path=f"/t/{tenant.id}/commitment", status_code=303)

    @get("/board/poster")
    async def poster(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        """A page to print and post at the entrance: the tenant's name and a QR code to its public board."""
        require_principal(principal)
        tenant = await self._tenant(db, tenant_id)
        url = board_url(request, tenant.id)
        qr = segno.make(url, error="m").svg_inline(scale=8, title=_("QR code of the public board"))
        return page(request, "selfcheck/poster.html", tenant=tenant, url=url, qr=qr)
