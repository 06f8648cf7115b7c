"""Roster pages: the people of a unit with their roles, changing a role, removing someone (after a
confirmation page, which works without JavaScript). Parse, authorise, call
:mod:`portal.tenants.roster.services`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.i18n import N_, _
from portal.core.web import DB, page
from portal.identity import access
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import Principal
from portal.models.tenants import MemberRole, Tenant
from portal.tenants import policies, services
from portal.tenants.roster import services as roster

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
# The unit's manager and responsible person manage its roster; staff and people from outside do not.
ROSTER_ACCESS = access.member(MemberRole.RESPONSIBLE, MemberRole.MANAGER)
NOT_ALLOWED = N_("Only the unit's manager or responsible person manages its people.")
REFUSALS = {
    "bad_role": N_("Choose one of the roles: responsible person, manager or staff."),
    "same_role": N_("%(name)s already has this role. Nothing was changed."),
    "already_holds": N_(
        "%(name)s already holds this role. To take the other role away, remove it instead of changing it."
    ),
    "responsible_only": N_(
        "Only a responsible person appoints or withdraws a responsible person. Nothing was changed."
    ),
    "last_responsible": N_(
        "%(name)s is the unit's only responsible person, and a unit always keeps one. "
        "Appoint another responsible person first. Nothing was changed."
    ),
}
DONE = {
    "role_changed": N_("The role was changed."),
    "removed": N_("The person was removed from the unit."),
}


async def _tenant(
    db: AsyncSession, principal: Principal | None, tenant_id: uuid.UUID
) -> tuple[Principal, Tenant]:
    me = require_principal(principal)
    tenant = await services.get_tenant(db, tenant_id)
    if tenant is None:
        raise NotFoundException()  # foreign or missing: the same answer (no existence oracle)
    return me, tenant


def _refusal(exc: roster.RosterRefused, name: str = "") -> str:
    """The translated message of a refusal; ``not_found`` and ``not_allowed`` become 404 and 403."""
    if exc.code == "not_found":
        raise NotFoundException()
    if exc.code == "not_allowed":
        raise PermissionDeniedException(detail=_(NOT_ALLOWED))
    return _(REFUSALS[exc.code], name=name)


class RosterPages(Controller):
    path = "/t/{tenant_id:uuid}/people"
    include_in_schema = False

    async def _roster_page(
        self,
        request: Request,
        db: AsyncSession,
        me: Principal,
        tenant: Tenant,
        *,
        error: str | None = None,
        notice: str | None = None,
        status_code: int = 200,
    ) -> Template:
        members = await services.roster(db, tenant.id)
        mine = await services.roles_of(db, tenant.id, me.user_id)
        # Offer only what the rules allow (the service checks again): the responsible role is the
        # responsible person's to give or take, unless the unit has none yet.
        responsible_is_mine = MemberRole.RESPONSIBLE in mine or not any(
            m.role is MemberRole.RESPONSIBLE for m in members
        )
        return page(
            request,
            "tenants/roster.html",
            status_code=status_code,
            tenant=tenant,
            members=members,
            me=me,
            roles=[r for r in MemberRole if responsible_is_mine or r is not MemberRole.RESPONSIBLE],
            responsible_is_mine=responsible_is_mine,
            error=error,
            notice=notice,
        )

    @get("/", opt=ROSTER_ACCESS)
    async def list_people(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        done: FromQuery[str | None] = None,
    ) -> Template:
        me, tenant = await _tenant(db, principal, tenant_id)
        notice = _(DONE[done]) if done in DONE else None
        return await self._roster_page(request, db, me, tenant, notice=notice)

    @post("/{membership_id:uuid}/role", opt=ROSTER_ACCESS)
    async def change_role(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        membership_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, Any], FORM],
    ) -> Template | Redirect:
        me, tenant = await _tenant(db, principal, tenant_id)
        try:
            await roster.change_role(
                db, tenant.id, membership_id, str(data.get("role", "")), actor_id=me.user_id
            )
        except roster.RosterRefused as exc:
            member = await roster.get_member(db, tenant.id, membership_id)
            message = _refusal(exc, member.display_name if member else "")
            return await self._roster_page(request, db, me, tenant, error=message, status_code=422)
        return Redirect(path=await self._after(db, me, tenant, "role_changed"), status_code=303)

    @get("/{membership_id:uuid}/remove", opt=ROSTER_ACCESS)
    async def confirm_remove(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        membership_id: FromPath[uuid.UUID],
    ) -> Template:
        me, tenant = await _tenant(db, principal, tenant_id)
        member = await roster.get_member(db, tenant.id, membership_id)
        if member is None:
            raise NotFoundException()
        refusal = None
        try:  # say so now, rather than offer a button that would be refused
            await roster.check_remove(db, tenant.id, membership_id, actor_id=me.user_id)
        except roster.RosterRefused as exc:
            refusal = _refusal(exc, member.display_name)
        return page(
            request,
            "tenants/roster_remove.html",
            tenant=tenant,
            member=member,
            me=me,
            refusal=refusal,
            status_code=200,
        )

    @post("/{membership_id:uuid}/remove", opt=ROSTER_ACCESS)
    async def remove(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        membership_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        me, tenant = await _tenant(db, principal, tenant_id)
        try:
            await roster.remove_member(db, tenant.id, membership_id, actor_id=me.user_id)
        except roster.RosterRefused as exc:
            member = await roster.get_member(db, tenant.id, membership_id)
            message = _refusal(exc, member.display_name if member else "")
            return page(
                request,
                "tenants/roster_remove.html",
                tenant=tenant,
                member=member,
                me=me,
                refusal=message,
                status_code=422,
            )
        return Redirect(path=await self._after(db, me, tenant, "removed"), status_code=303)

    @staticmethod
    async def _after(db: AsyncSession, me: Principal, tenant: Tenant, done: str) -> str:
        """Where to go after a change: back to the roster, unless the change took the person's own right to
        manage it (they stepped down to staff: the unit's home; they left the unit: their own home)."""
        mine = await services.roles_of(db, tenant.id, me.user_id)
        if policies.may_manage_roster(mine):
            return f"/t/{tenant.id}/people/?done={done}"
        return f"/t/{tenant.id}" if mine else "/"
