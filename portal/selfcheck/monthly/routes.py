"""Self-check pages: the list of periods, the phone form answered item by item (htmx), submission."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.i18n import N_, _
from portal.core.web import DB, page
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import ContextKind, Principal
from portal.models.selfcheck import Answer, SelfCheck
from portal.models.tenants import MemberRole, Tenant
from portal.selfcheck import policies
from portal.selfcheck.monthly import services
from portal.selfcheck.policies import CYCLE_PAGES
from portal.selfcheck.signing import services as signing
from portal.tenants import services as tenant_services

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
REFUSALS = {
    "already_submitted": N_("This self-check has been submitted; its answers can no longer change."),
    "unknown_item": N_("This item is not part of the checklist."),
    "fail_needs_note": N_("Say what is wrong, so that it can be fixed."),
    "incomplete": N_("Answer every item before submitting."),
    "bad_answer": N_("Choose pass, fail or not applicable."),
    "photo_required": N_("Add a photo of the problem to each failed item that needs one: %(items)s."),
}


async def _context(
    db: AsyncSession, principal: Principal | None, tenant_id: uuid.UUID, selfcheck_id: uuid.UUID | None = None
) -> tuple[Principal, Tenant, set[MemberRole], SelfCheck | None]:
    me = require_principal(principal)
    tenant = await tenant_services.get_tenant(db, tenant_id)
    if tenant is None:
        raise NotFoundException()
    roles: set[MemberRole] = set()
    if me.context is not None and me.context.kind is ContextKind.MEMBER:
        roles = await tenant_services.roles_of(db, tenant.id, me.user_id)
    sc = None
    if selfcheck_id is not None:
        sc = await services.load(db, selfcheck_id)
        if sc is None or sc.tenant_id != tenant.id:
            raise NotFoundException()
    return me, tenant, roles, sc


class SelfCheckPages(Controller):
    path = "/t/{tenant_id:uuid}/selfchecks"
    include_in_schema = False
    opt = CYCLE_PAGES  # members read and (manager, responsible person) answer

    @get("/")
    async def index(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        _me, tenant, roles, _sc = await _context(db, principal, tenant_id)
        checks = await services.list_for_tenant(db, tenant.id)
        return page(
            request,
            "selfcheck/index.html",
            tenant=tenant,
            checks=checks,
            can_answer=policies.may_answer(roles),
        )

    @get("/{selfcheck_id:uuid}")
    async def form(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
    ) -> Template:
        me, tenant, roles, sc = await _context(db, principal, tenant_id, selfcheck_id)
        assert sc is not None
        can_sign = policies.may_sign_report(roles, sc)
        return page(
            request,
            "selfcheck/form.html",
            tenant=tenant,
            sc=sc,
            sections=services.sections(sc),
            progress=services.progress(sc),
            can_answer=policies.may_answer(roles, sc),
            can_sign=can_sign,
            # Without a passkey the button could only fail: the page sends them to add one first.
            has_passkey=can_sign and bool(await signing.signer_credentials(db, me.user_id)),
            error=None,
        )

    @post("/{selfcheck_id:uuid}/items/{item_code:str}")
    async def answer(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
        item_code: FromPath[str],
        data: Annotated[dict[str, Any], FORM],
    ) -> Template:
        me, tenant, _roles, sc = await _context(db, principal, tenant_id, selfcheck_id)
        assert sc is not None
        item = next((i for i in sc.checklist.items if i.code == item_code), None)
        if item is None:
            raise NotFoundException()  # not an item of this checklist, whatever the answer says
        note = str(data.get("note", ""))
        error = None
        try:
            value = Answer(str(data.get("answer", "")))
        except ValueError:
            error, value = "bad_answer", None
        if value is not None:
            try:
                await services.answer(db, sc, item_code, value, user_id=me.user_id, note=note)
            except services.SelfCheckRefused as exc:
                error = exc.code
        saved = next((a for a in sc.answers if a.item_code == item_code), None)
        return page(
            request,
            "selfcheck/form.html",
            fragment="selfcheck/_item_response.html",
            status_code=200 if error is None else 422,
            tenant=tenant,
            sc=sc,
            item=item,
            saved=saved,
            draft={"answer": str(data.get("answer", "")), "note": note},
            progress=services.progress(sc),
            can_answer=True,
            error=_(REFUSALS[error]) if error else None,
            sections=services.sections(sc),
        )

    @post("/{selfcheck_id:uuid}/submit")
    async def submit(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        me, tenant, _roles, sc = await _context(db, principal, tenant_id, selfcheck_id)
        assert sc is not None
        try:
            await services.submit(db, sc, tenant, user_id=me.user_id)
        except services.SelfCheckRefused as exc:
            return page(
                request,
                "selfcheck/form.html",
                status_code=422,
                tenant=tenant,
                sc=sc,
                sections=services.sections(sc),
                progress=services.progress(sc),
                can_answer=True,
                error=_(REFUSALS[exc.code], items=", ".join(exc.items)),
            )
        return Redirect(path=f"/t/{tenant.id}/selfchecks/{sc.id}", status_code=303)
