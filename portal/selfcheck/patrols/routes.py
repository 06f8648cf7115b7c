"""Patrol pages: the log of the last days with the streak, and the one-page phone form of a round."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.i18n import N_, _
from portal.core.web import DB, page
from portal.identity import access, reads
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import ContextKind, Principal
from portal.models.selfcheck import Answer, Checklist, PatrolRound
from portal.models.tenants import Tenant
from portal.selfcheck.patrols import services as patrols
from portal.selfcheck.patrols.services import ItemResult, PatrolRefused
from portal.tenants import services as tenant_services

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
LOG_DAYS = 14
# The log is read by the unit and by those who follow it up; rounds are logged by the unit's own people.
LOG_ACCESS = access.member() | access.cross_tenant(
    ContextKind.WARDEN, ContextKind.COMMITTEE, ContextKind.REGULATOR
)
REFUSALS = {
    "not_required": N_(
        "Daily fire patrols are required of key fire-safety units only; this unit does not log them."
    ),
    "no_checklist": N_("The patrol checklist is not available yet. Please ask the platform administrator."),
    "round_not_due": N_("This round is not due now. Choose one of the rounds offered."),
    "item_problems": N_("Some items need attention; see below."),
    "fail_needs_note": N_("Say what is wrong, so that it can be fixed."),
    "bad_answer": N_("Choose pass or fail."),
    "unknown_item": N_("This item is not part of the checklist."),
}


async def _tenant(
    db: AsyncSession, principal: Principal | None, tenant_id: uuid.UUID
) -> tuple[Principal, Tenant]:
    me = require_principal(principal)
    tenant = await tenant_services.get_tenant(db, tenant_id)
    if tenant is None:
        raise NotFoundException()  # foreign or missing: the same answer
    return me, tenant


def _form_page(
    request: Request,
    tenant: Tenant,
    checklist: Checklist | None,
    now: datetime,
    *,
    today: patrols.DayRecord | None = None,
    chosen: str = "",
    drafts: dict[str, dict[str, str]] | None = None,
    item_errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    open_slots = patrols.open_slots(tenant, now) if checklist is not None else []
    logged = {s.key for s, p in (today.rounds if today else []) if p is not None}
    if not chosen and open_slots:  # the first timed round not logged yet, else the daily round
        pending = [s for s in open_slots if s.key not in logged]
        timed = [s for s in pending if s.round is not PatrolRound.DAILY]
        chosen = (timed or pending or open_slots)[0].round.value
    return page(
        request,
        "selfcheck/patrol_form.html",
        status_code=status_code,
        tenant=tenant,
        checklist=checklist,
        open_slots=open_slots,
        logged=logged,
        chosen=chosen,
        drafts=drafts or {},
        item_errors={code: _(REFUSALS[c]) for code, c in (item_errors or {}).items()},
        error=error,
    )


class PatrolPages(Controller):
    path = "/t/{tenant_id:uuid}/patrols"
    include_in_schema = False

    @get("/", opt=LOG_ACCESS)
    async def log(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        me, tenant = await _tenant(db, principal, tenant_id)
        reads.note(request, page="patrols")
        required = patrols.patrols_required(tenant)
        today = patrols.local_day(datetime.now(UTC))
        first = max(today - timedelta(days=LOG_DAYS - 1), patrols.local_day(tenant.created_at))
        return page(
            request,
            "selfcheck/patrols.html",
            tenant=tenant,
            required=required,
            days=await patrols.records(db, tenant, first, today) if required else [],
            streak=await patrols.streak(db, tenant, today) if required else 0,
            today=today,
            can_log=me.context is not None and me.context.kind is ContextKind.MEMBER,
        )

    @get("/new", opt=access.member())
    async def form(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        _me, tenant = await _tenant(db, principal, tenant_id)
        now = datetime.now(UTC)
        try:
            checklist = await patrols.patrol_checklist(db, tenant)
        except PatrolRefused as exc:
            return _form_page(request, tenant, None, now, error=_(REFUSALS[exc.code]))
        today = patrols.local_day(now)
        record = (await patrols.records(db, tenant, today, today))[0]
        return _form_page(request, tenant, checklist, now, today=record)

    @post("/", opt=access.member())
    async def submit(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, Any], FORM],
    ) -> Template | Redirect:
        me, tenant = await _tenant(db, principal, tenant_id)
        now = datetime.now(UTC)
        try:
            checklist = await patrols.patrol_checklist(db, tenant)
        except PatrolRefused as exc:
            return _form_page(request, tenant, None, now, error=_(REFUSALS[exc.code]), status_code=422)
        drafts: dict[str, dict[str, str]] = {}
        results: dict[str, ItemResult] = {}
        bad: dict[str, str] = {}
        for item in checklist.items:
            answer = str(data.get(f"answer-{item.code}", "pass"))
            note = str(data.get(f"note-{item.code}", ""))
            drafts[item.code] = {"answer": answer, "note": note}
            if answer not in (Answer.PASS.value, Answer.FAIL.value):
                bad[item.code] = "bad_answer"
                continue
            results[item.code] = ItemResult(Answer(answer), note)
        chosen = str(data.get("round", ""))
        try:
            if bad:
                raise PatrolRefused("item_problems", bad)
            try:
                round_ = PatrolRound(chosen)
            except ValueError:
                raise PatrolRefused("round_not_due") from None
            await patrols.log_patrol(db, tenant, round_, results, user_id=me.user_id, now=now)
        except PatrolRefused as exc:
            today = patrols.local_day(now)
            return _form_page(
                request,
                tenant,
                checklist,
                now,
                today=(await patrols.records(db, tenant, today, today))[0],
                chosen=chosen,
                drafts=drafts,
                item_errors=exc.items,
                error=_(REFUSALS[exc.code]),
                status_code=422,
            )
        return Redirect(path=f"/t/{tenant.id}/patrols/", status_code=303)
