"""``/``: send each person to the home of their active role."""

from __future__ import annotations

from litestar import get
from litestar.response import Redirect

from portal.identity import access
from portal.identity.dependencies import CurrentPrincipal
from portal.identity.routes import home_of


@get("/", include_in_schema=False, opt=access.public())
async def home(principal: CurrentPrincipal) -> Redirect:
    if principal is None:
        return Redirect(path="/signin")
    return Redirect(path=home_of(principal.context))
