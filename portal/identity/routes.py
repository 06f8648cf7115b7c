"""Sign-in pages, the context switcher and the language switch."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from portal.core import i18n
from portal.core.i18n import N_, _
from portal.core.web import DB, page, safe_next
from portal.identity import access, services
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import Context, ContextKind
from portal.identity.sessions import start_session

# Shown on the sign-in page for ``?notice=...`` (any other value shows nothing).
NOTICES = {
    "session_ended": N_("Your session has ended. Please sign in again."),
    "signed_out_everywhere": N_("You have been signed out on all your devices."),
}


def home_of(context: Context | None) -> str:
    if context is None:
        return "/signin"
    if context.kind is ContextKind.MEMBER:
        return f"/t/{context.key}"
    if context.kind is ContextKind.ADMIN:
        return "/invitations"  # the platform admin onboards regulators, committees and insurers there
    return "/tenants"


class AuthController(Controller):
    path = "/"
    include_in_schema = False

    @get("/signin", opt=access.public())
    async def signin_page(
        self, request: Request, next: FromQuery[str | None] = None, notice: FromQuery[str | None] = None
    ) -> Template:
        settings = request.app.state.settings
        users = []
        if services.demo_sign_in_allowed(settings):
            users = await services.demo_users(request.app.state.db)
        return page(
            request,
            "auth/signin_notice.html" if notice in NOTICES else "signin.html",
            notice=_(NOTICES[notice]) if notice in NOTICES else None,
            demo_users=users,
            demo=services.demo_sign_in_allowed(settings),
            next=safe_next(next),
        )

    @post("/signin/demo", opt=access.public())
    async def demo_signin(
        self,
        request: Request,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        settings = request.app.state.settings
        if not services.demo_sign_in_allowed(settings):
            raise NotFoundException()
        found = await services.demo_person(request.app.state.db, str(data.get("login", "")))
        if found is None:
            raise NotFoundException()
        user, contexts = found
        chosen = start_session(request, user, contexts, "demo", ctx=str(data.get("ctx", "")))
        target = safe_next(str(data.get("next") or ""))
        return Redirect(path=target if target != "/" else home_of(chosen), status_code=303)

    @post("/signout", opt=access.public())  # a session that already ended can still sign out
    async def signout(self, request: Request) -> Redirect:
        request.clear_session()
        return Redirect(path="/signin", status_code=303)

    @get("/switch", opt=access.signed_in())
    async def switch_page(self, request: Request, principal: CurrentPrincipal) -> Template:
        me = require_principal(principal)
        contexts = await services.roles_of(request.app.state.db, me.user_id, "context switcher")
        return page(request, "switch.html", contexts=contexts, active=me.context)

    @post("/switch", opt=access.signed_in())
    async def switch(
        self,
        request: Request,
        principal: CurrentPrincipal,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        me = require_principal(principal)
        contexts = await services.roles_of(request.app.state.db, me.user_id, "context switcher")
        chosen = next((c for c in contexts if c.token == data.get("ctx")), None)
        if chosen is None:
            raise PermissionDeniedException(detail=_("You do not hold this role."))
        request.session["ctx"] = chosen.token
        return Redirect(path=home_of(chosen), status_code=303)

    @post("/lang", opt=access.public())
    async def set_language(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        locale = str(data.get("lang", ""))
        if locale not in i18n.LOCALES:
            locale = i18n.DEFAULT_LOCALE
        if principal is not None:
            await services.set_locale(db, principal.user_id, locale)
            request.session["locale"] = locale
        response = Redirect(path=safe_next(str(data.get("next") or "/")), status_code=303)
        response.set_cookie("lang", locale, max_age=365 * 24 * 3600, httponly=True, samesite="lax")
        return response
