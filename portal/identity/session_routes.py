"""The account's sessions page: when and how this session started, and "sign out everywhere"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from portal.core.i18n import N_, _
from portal.core.web import DB, page
from portal.identity import access, sessions
from portal.identity.dependencies import CurrentPrincipal, require_principal

METHODS = {
    "passkey": N_("with a passkey"),
    "demo": N_("with the demo sign-in"),
    "invitation": N_("by accepting an invitation"),
}


class SessionPages(Controller):
    path = "/account/sessions"
    include_in_schema = False
    opt = access.signed_in()

    @get("/")
    async def sessions_page(self, request: Request, principal: CurrentPrincipal) -> Template:
        require_principal(principal)
        settings = request.app.state.settings
        started = sessions.started_at(request.session)
        started_dt = datetime.fromtimestamp(started, UTC) if started is not None else None
        method = str(request.session.get("method") or "")
        return page(
            request,
            "auth/sessions.html",
            started_at=started_dt,
            ends_at=started_dt + timedelta(hours=settings.session_absolute_hours) if started_dt else None,
            method=_(METHODS[method]) if method in METHODS else method,
            idle_minutes=settings.session_idle_minutes,
            absolute_hours=settings.session_absolute_hours,
        )

    @post("/signout-everywhere")
    async def sign_out_everywhere(self, request: Request, db: DB, principal: CurrentPrincipal) -> Redirect:
        me = require_principal(principal)
        await sessions.sign_out_everywhere(db, me.user_id)
        request.clear_session()
        return Redirect(path="/signin?notice=signed_out_everywhere", status_code=303)
