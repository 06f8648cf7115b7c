"""Hazard pages: the list, one hazard with its history and photos, and the steps of rectification."""

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
from portal.models.selfcheck import Hazard
from portal.models.tenants import Tenant
from portal.selfcheck import policies
from portal.selfcheck.hazards import services as hazards
from portal.selfcheck.hazards.services import Action, HazardRefused
from portal.selfcheck.policies import CYCLE_PAGES, HazardActor
from portal.tenants import services as tenant_services

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
REFUSALS = {
    "not_allowed_in_state": N_("This step is not possible in the hazard's current state."),
    "major_needs_outside_verifier": N_(
        "A suspected major hazard is verified by the grid warden or the regulator, not from inside the unit."
    ),
    "verifier_role": N_("Only the manager or the responsible person verifies a rectification."),
    "reason_required": N_("Say why the rectification is not accepted."),
    "describe_the_fix": N_("Describe what was done."),
    "evidence_required": N_("Add a photo of the result first."),
    "not_fixable_on_the_spot": N_("This hazard cannot be fixed on the spot; start a rectification instead."),
    "assigner_role": N_("Only the manager or the responsible person names who rectifies a hazard."),
    "not_a_member": N_("Choose one of the unit's people."),
}


async def _actor(db: AsyncSession, me: Principal, tenant: Tenant) -> HazardActor:
    roles = await tenant_services.roles_of(db, tenant.id, me.user_id) if me.kind is ContextKind.MEMBER else ()
    actor = policies.hazard_actor(me, roles)
    if actor is None:
        raise NotFoundException()  # insurers and others never see hazard details
    return actor


async def _load(
    db: AsyncSession, principal: Principal | None, tenant_id: uuid.UUID, hazard_id: uuid.UUID | None = None
) -> tuple[Principal, Tenant, HazardActor, Hazard | None]:
    me = require_principal(principal)
    tenant = await tenant_services.get_tenant(db, tenant_id)
    if tenant is None:
        raise NotFoundException()
    actor = await _actor(db, me, tenant)
    hazard = None
    if hazard_id is not None:
        hazard = await hazards.load_hazard(db, hazard_id)
        if hazard is None or hazard.tenant_id != tenant.id:
            raise NotFoundException()
    return me, tenant, actor, hazard


async def _hazard_page(
    request: Request,
    db: AsyncSession,
    tenant: Tenant,
    hazard: Hazard | None,
    actor: HazardActor,
    error: str = "",
) -> Template:
    """One hazard; with ``error`` (a refusal code) the page answers 422 with the message on top."""
    assert hazard is not None
    people = await tenant_services.roster(db, tenant.id)
    names = {p.user_id: p.display_name for p in people}
    return page(
        request,
        "selfcheck/hazard.html",
        status_code=422 if error else 200,
        tenant=tenant,
        hazard=hazard,
        actor=actor,
        can_assign=policies.may_assign_hazard(actor, hazard),
        can_verify=policies.may_verify_hazard(actor, hazard),
        people=list({p.user_id: p for p in people}.values()),
        responsible_name=names.get(hazard.responsible_user_id) if hazard.responsible_user_id else None,
        error=_(REFUSALS[error]) if error else None,
    )


class HazardPages(Controller):
    path = "/t/{tenant_id:uuid}/hazards"
    include_in_schema = False
    opt = CYCLE_PAGES  # wardens and regulators verify major hazards from outside

    @get("/")
    async def index(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        _me, tenant, _actor, _h = await _load(db, principal, tenant_id)
        return page(
            request,
            "selfcheck/hazards.html",
            tenant=tenant,
            hazards=await hazards.list_hazards(db, tenant.id),
        )

    @get("/{hazard_id:uuid}")
    async def detail(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        hazard_id: FromPath[uuid.UUID],
    ) -> Template:
        _me, tenant, actor, hazard = await _load(db, principal, tenant_id, hazard_id)
        return await _hazard_page(request, db, tenant, hazard, actor)

    @post("/{hazard_id:uuid}/assign")
    async def assign(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        hazard_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, Any], FORM],
    ) -> Template | Redirect:
        _me, tenant, actor, hazard = await _load(db, principal, tenant_id, hazard_id)
        assert hazard is not None
        try:
            user_id = uuid.UUID(str(data.get("user_id", "")))
        except ValueError:
            return await _hazard_page(request, db, tenant, hazard, actor, error="not_a_member")
        try:
            await hazards.assign(db, hazard, user_id, actor)
        except HazardRefused as exc:
            return await _hazard_page(request, db, tenant, hazard, actor, error=exc.code)
        return Redirect(path=f"/t/{tenant.id}/hazards/{hazard.id}", status_code=303)

    @post("/{hazard_id:uuid}/actions/{action:str}")
    async def act(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        hazard_id: FromPath[uuid.UUID],
        action: FromPath[str],
        data: Annotated[dict[str, Any], FORM],
    ) -> Template | Redirect:
        _me, tenant, actor, hazard = await _load(db, principal, tenant_id, hazard_id)
        assert hazard is not None
        try:
            step = Action(action)
        except ValueError as exc:
            raise NotFoundException() from exc
        evidence = await hazards.evidence_since_last_step(db, hazard)
        try:
            await hazards.transition(
                db, hazard, step, actor, reason=str(data.get("reason", "")), evidence_ids=evidence
            )
        except HazardRefused as exc:
            return await _hazard_page(request, db, tenant, hazard, actor, error=exc.code)
        return Redirect(path=f"/t/{tenant.id}/hazards/{hazard.id}", status_code=303)
