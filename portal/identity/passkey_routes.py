"""Passkey sign-in and a person's passkeys page. Parse, call ``passkeys``, render.

The JSON endpoints are POSTs protected by the CSRF header (``x-csrftoken``); the browser side is
``static/js/passkeys.js`` on top of ``@simplewebauthn/browser``. A ceremony's challenge is popped from
the server-side session before its response is verified, so a response can never be used twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from portal.config import Settings
from portal.core.i18n import N_, _
from portal.core.problems import Problem
from portal.core.web import DB, page, safe_next
from portal.identity import access, passkeys, services
from portal.identity.ceremonies import CEREMONY_BODY_MAX
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.passkey_schemas import CredentialSubmission, RenameForm
from portal.identity.routes import home_of
from portal.identity.sessions import start_session
from portal.models.identity import User

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)

MESSAGES = {
    "challenge": N_("This passkey request has expired or was already used. Please try again."),
    "origin": N_("This passkey answer was made for another website. Nothing was changed."),
    "rp_id": N_("This passkey belongs to another website. Nothing was changed."),
    "user_verification": N_(
        "Your device did not confirm that it is you (fingerprint, face or screen lock). "
        "Please try again and unlock with your device."
    ),
    "counter": N_(
        "This passkey was refused: its use counter went backwards, as happens with a copied passkey. "
        "Ask for a recovery invitation."
    ),
    "unknown_credential": N_(
        "This passkey is not known here, or it was revoked. "
        "Ask whoever invited you for a recovery invitation."
    ),
    "duplicate": N_("This passkey is already registered."),
    "unregistered": N_(
        "This passkey cannot sign: the audit log does not record its key "
        "(it was added before keys were recorded). Add a new passkey on your passkeys page, then sign."
    ),
    "invalid": N_("The passkey answer could not be verified. Please try again."),
    "name": N_("Give the passkey a name of 1 to 80 characters."),
    "last_passkey": N_(
        "This is your only passkey: revoking it would lock you out. "
        "Add another passkey first, or ask for a recovery invitation."
    ),
}


def passkey_error(exc: passkeys.PasskeyError) -> Problem:
    """A refused ceremony, to raise: problem details whose ``detail`` the page shows where the button is."""
    return Problem(400, _(MESSAGES.get(exc.code, MESSAGES["invalid"])), code=exc.code)


def default_passkey_name(settings: Settings) -> str:
    today = datetime.now(ZoneInfo(settings.display_timezone)).strftime("%Y-%m-%d")
    return _("Passkey added on %(date)s", date=today)


def pop_ceremony(request: Request) -> Any:
    return request.session.pop(passkeys.SESSION_KEY, None) if request.session else None


class PasskeyController(Controller):
    path = "/"
    include_in_schema = False
    opt = access.signed_in()  # the person's own passkeys; sign-in overrides it with public()
    request_max_body_size = CEREMONY_BODY_MAX

    # -- sign-in -------------------------------------------------------------------------------------

    @get("/signin/passkey", opt=access.public())
    async def signin_page(self, request: Request, next: FromQuery[str | None] = None) -> Template:
        return page(request, "auth/passkey_signin.html", next=safe_next(next))

    @post("/signin/passkey/options", status_code=200, opt=access.public())
    async def signin_options(self, request: Request) -> dict[str, Any]:
        options, ceremony = passkeys.authentication_options(request.app.state.settings)
        request.session[passkeys.SESSION_KEY] = ceremony.to_session()
        return {"publicKey": options}

    @post("/signin/passkey", status_code=200, opt=access.public())
    async def signin(
        self, request: Request, db: DB, data: JSONBody[CredentialSubmission]
    ) -> Response[dict[str, Any]]:
        settings = request.app.state.settings
        try:
            ceremony = passkeys.take_ceremony(pop_ceremony(request), "signin")
            signed_in = await passkeys.authenticate(db, settings, ceremony, data.credential)
        except passkeys.PasskeyError as exc:
            raise passkey_error(exc) from None
        contexts = await services.roles_of(request.app.state.db, signed_in.user.id, "passkey sign-in")
        chosen = start_session(request, signed_in.user, contexts, "passkey")
        target = safe_next(data.next)
        return Response({"redirect": target if target != "/" else home_of(chosen)})

    # -- the person's passkeys -------------------------------------------------------------------------

    async def _account_page(
        self, request: Request, db: DB, user_id: uuid.UUID, *, error: str | None = None, status: int = 200
    ) -> Template:
        items = await passkeys.list_passkeys(db, user_id)
        return page(
            request,
            "auth/passkeys.html",
            status_code=status,
            passkeys=items,
            can_revoke=await passkeys.can_revoke_any(db, user_id),
            error=error,
            default_name=default_passkey_name(request.app.state.settings),
        )

    @get("/account/passkeys")
    async def account(self, request: Request, db: DB, principal: CurrentPrincipal) -> Template:
        me = require_principal(principal)
        return await self._account_page(request, db, me.user_id)

    @post("/account/passkeys/options", status_code=200)
    async def add_options(self, request: Request, db: DB, principal: CurrentPrincipal) -> dict[str, Any]:
        me = require_principal(principal)
        user = await db.get(User, me.user_id)
        assert user is not None  # the principal dependency checked it
        options, ceremony = passkeys.registration_options(
            request.app.state.settings,
            user_id=user.id,
            user_name=user.display_name,
            display_name=user.display_name,
            rp_name=_("Fire-safety portal"),
            exclude=await passkeys.credential_ids(db, user.id),
            binding=f"user:{user.id}",
        )
        request.session[passkeys.SESSION_KEY] = ceremony.to_session()
        return {"publicKey": options}

    @post("/account/passkeys", status_code=200)
    async def add(
        self, request: Request, db: DB, principal: CurrentPrincipal, data: JSONBody[CredentialSubmission]
    ) -> Response[dict[str, Any]]:
        me = require_principal(principal)
        settings = request.app.state.settings
        try:
            ceremony = passkeys.take_ceremony(pop_ceremony(request), "register", binding=f"user:{me.user_id}")
            credential = passkeys.verify_registration(settings, ceremony, data.credential)
            await passkeys.add_passkey(db, credential, name=data.name or default_passkey_name(settings))
        except passkeys.PasskeyError as exc:
            raise passkey_error(exc) from None
        return Response({"redirect": "/account/passkeys"})

    @post("/account/passkeys/{passkey_id:uuid}/rename")
    async def rename(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        passkey_id: FromPath[uuid.UUID],
        data: Annotated[RenameForm, FORM],
    ) -> Redirect | Template:
        me = require_principal(principal)
        try:
            renamed = await passkeys.rename_passkey(db, me.user_id, passkey_id, data.name)
        except passkeys.PasskeyError as exc:
            return await self._account_page(request, db, me.user_id, error=_(MESSAGES[exc.code]), status=400)
        if renamed is None:
            raise NotFoundException()
        return Redirect(path="/account/passkeys", status_code=303)

    @post("/account/passkeys/{passkey_id:uuid}/revoke")
    async def revoke(
        self, request: Request, db: DB, principal: CurrentPrincipal, passkey_id: FromPath[uuid.UUID]
    ) -> Redirect | Template:
        me = require_principal(principal)
        try:
            revoked = await passkeys.revoke_passkey(db, me.user_id, passkey_id)
        except passkeys.PasskeyError as exc:
            return await self._account_page(request, db, me.user_id, error=_(MESSAGES[exc.code]), status=400)
        if revoked is None:
            raise NotFoundException()
        return Redirect(path="/account/passkeys", status_code=303)
