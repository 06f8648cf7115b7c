"""``/``: send each person to the home of their active role."""

from __future__ import annotations

from litestar import get
from litestar.response import Redirect

from portal.core import access
from portal.core.auth.routes import home_of
from portal.core.web import CurrentPrincipal


@get("/", include_in_schema=False, opt=access.public())
async def home(principal: CurrentPrincipal) -> Redirect:
    if principal is None:
        return Redirect(path="/signin")
    return Redirect(path=home_of(principal.context))
