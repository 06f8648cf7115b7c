"""The inbox: the signed-in person's notifications, newest first, mark read with htmx, paginated."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from portal.core.web import DB, page
from portal.identity import access
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.notify import services


def _is_htmx(request: Request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted  # type: ignore[union-attr]


class InboxPages(Controller):
    path = "/inbox"
    include_in_schema = False
    opt = access.signed_in()  # one's own messages, whatever the active role

    @get("/")
    async def index(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        page_no: Annotated[int, QueryParameter(name="page", ge=1, le=100_000)] = 1,
    ) -> Template:
        me = require_principal(principal)
        rows, total = await services.inbox(db, me.user_id, page=page_no)
        pages = max(1, -(-total // services.PAGE_SIZE))
        return page(
            request,
            "notify/inbox.html",
            fragment="notify/_list.html",
            notes=rows,
            total=total,
            page_no=page_no,
            pages=pages,
            unread=await services.unread_count(db, me.user_id),
        )

    @get("/unread")
    async def unread(self, request: Request, db: DB, principal: CurrentPrincipal) -> Template:
        """The small unread badge (for the header: ``hx-get="/inbox/unread" hx-trigger="load"``)."""
        me = require_principal(principal)
        return Template(
            template_name="notify/_unread.html",
            context={"unread": await services.unread_count(db, me.user_id), "oob": False},
        )

    @post("/{notification_id:uuid}/read")
    async def mark_read(
        self, request: Request, db: DB, principal: CurrentPrincipal, notification_id: FromPath[uuid.UUID]
    ) -> Template | Redirect:
        me = require_principal(principal)
        note = await services.mark_read(db, me.user_id, notification_id)
        if note is None:
            raise NotFoundException()  # another person's message, or none: the same answer
        if not _is_htmx(request):
            return Redirect(path="/inbox", status_code=303)
        return Template(
            template_name="notify/_read_response.html",
            context={"note": note, "unread": await services.unread_count(db, me.user_id), "oob": True},
        )

    @post("/read-all")
    async def mark_all_read(self, db: DB, principal: CurrentPrincipal) -> Redirect:
        me = require_principal(principal)
        await services.mark_all_read(db, me.user_id)
        return Redirect(path="/inbox", status_code=303)
