"""The insurer portal's key management: create (shown once), list, revoke."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from portal.core.i18n import N_, _
from portal.core.web import DB, page
from portal.identity import access, api_keys
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import ContextKind, Principal

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
ERRORS = {
    "name": N_("Give the key a name of at most 80 characters."),
    "validity": N_("Choose a validity between 1 and 730 days."),
    "scope": N_("Unknown permission."),
}


def _insurer_of(principal: Principal | None) -> tuple[Principal, uuid.UUID]:
    me = require_principal(principal)
    if me.context is None or me.context.kind is not ContextKind.INSURER:
        raise PermissionDeniedException(detail=_("Only an insurer's users manage its API keys."))
    return me, uuid.UUID(me.context.key)


class InsurerKeyPages(Controller):
    path = "/insurer/keys"
    include_in_schema = False
    opt = access.insurer()

    @get("/")
    async def keys(self, request: Request, db: DB, principal: CurrentPrincipal) -> Template:
        _me, insurer_id = _insurer_of(principal)
        keys = await api_keys.list_keys(db, insurer_id)
        return page(
            request, "insurer/keys.html", keys=keys, error=None, form={"name": "", "valid_days": "365"}
        )

    @post("/")
    async def create(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        data: Annotated[dict[str, Any], FORM],
    ) -> Template:
        me, insurer_id = _insurer_of(principal)
        name = str(data.get("name", ""))
        raw_days = str(data.get("valid_days", "")).strip()
        try:
            valid_days = int(raw_days) if raw_days else None
            new = await api_keys.create_key(
                db, insurer_id=insurer_id, name=name, created_by=me.user_id, valid_days=valid_days
            )
        except (ValueError, api_keys.ApiKeyError) as exc:
            code = exc.code if isinstance(exc, api_keys.ApiKeyError) else "validity"
            keys = await api_keys.list_keys(db, insurer_id)
            return page(
                request,
                "insurer/keys.html",
                status_code=400,
                keys=keys,
                error=_(ERRORS[code]),
                form={"name": name, "valid_days": raw_days},
            )
        return page(request, "insurer/key_created.html", key=new.key, plaintext=new.plaintext)

    @post("/{key_id:uuid}/revoke")
    async def revoke(self, db: DB, principal: CurrentPrincipal, key_id: FromPath[uuid.UUID]) -> Redirect:
        _me, insurer_id = _insurer_of(principal)
        if await api_keys.revoke_key(db, insurer_id=insurer_id, key_id=key_id) is None:
            raise NotFoundException()
        return Redirect(path="/insurer/keys", status_code=303)
