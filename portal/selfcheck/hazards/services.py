"""The hazard state machine (DESIGN section 3): open → in_rectification → awaiting_verification → closed,
``rejected`` sending it back to in_rectification, ``overdue`` a flag. Every transition is an event row."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core import clock
from portal.models.selfcheck import ChecklistItem, Hazard, HazardEvent, HazardSource, HazardStatus, Severity
from portal.selfcheck import policies
from portal.selfcheck.deadlines import DEFAULT_POLICY, Policy, hazard_deadline
from portal.selfcheck.policies import HazardActor


class HazardRefused(ValueError):
    """A transition the state machine does not allow; ``code`` names it for a translated message."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Action(enum.StrEnum):
    START = "start"  # open → in_rectification
    SUBMIT_FIX = "submit_fix"  # in_rectification → awaiting_verification
    VERIFY = "verify"  # awaiting_verification → closed
    REJECT = "reject"  # awaiting_verification → in_rectification
    FIX_ON_THE_SPOT = "fix_on_the_spot"  # open → closed (general) / awaiting_verification (major)


TRANSITIONS: dict[tuple[HazardStatus, Action], HazardStatus] = {
    (HazardStatus.OPEN, Action.START): HazardStatus.IN_RECTIFICATION,
    (HazardStatus.IN_RECTIFICATION, Action.SUBMIT_FIX): HazardStatus.AWAITING_VERIFICATION,
    (HazardStatus.AWAITING_VERIFICATION, Action.VERIFY): HazardStatus.CLOSED,
    (HazardStatus.AWAITING_VERIFICATION, Action.REJECT): HazardStatus.IN_RECTIFICATION,
    (HazardStatus.OPEN, Action.FIX_ON_THE_SPOT): HazardStatus.CLOSED,
}


# What else settles when a hazard closes, in the same transaction (the ledger resolves its entries now,
# not at the next daily run). Named by portal.registry: the ledger reads patrols, which open hazards here.
WhenClosed = Callable[[AsyncSession, datetime, Sequence[uuid.UUID]], Awaitable[object]]
_when_closed: list[WhenClosed] = []


def when_closed(fn: WhenClosed) -> None:
    """Run ``fn(session, now, tenant_ids)`` whenever a hazard closes. Called by :mod:`portal.registry`."""
    if fn not in _when_closed:
        _when_closed.append(fn)


@dataclass
class OpenHazard:
    """What a new hazard needs; reason and fix guidance come from the checklist item when there is one."""

    source: HazardSource
    title: str
    severity: Severity
    item: ChecklistItem | None = None
    note: str = ""
    selfcheck_id: uuid.UUID | None = None
    responsible_user_id: uuid.UUID | None = None
    deadline_at: datetime | None = None
    evidence_ids: list[str] = field(default_factory=list)


def _event(
    hazard: Hazard,
    action: str,
    before: HazardStatus | None,
    actor: HazardActor,
    reason: str,
    evidence_ids: list[str],
    at: datetime,
) -> HazardEvent:
    return HazardEvent(
        tenant_id=hazard.tenant_id,
        hazard_id=hazard.id,
        action=action,
        from_status=before,
        to_status=hazard.status,
        actor_user_id=actor.user_id,
        actor_kind=actor.kind.value,
        reason=reason,
        evidence_ids=evidence_ids,
        at=at,
    )


async def open_hazard(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    spec: OpenHazard,
    actor: HazardActor,
    *,
    now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> Hazard:
    now = now or datetime.now(UTC)
    if spec.deadline_at is not None and spec.deadline_at <= now:
        raise HazardRefused("deadline_in_past")
    item = spec.item
    hazard = Hazard(
        tenant_id=tenant_id,
        source=spec.source,
        selfcheck_id=spec.selfcheck_id,
        item_id=item.id if item else None,
        item_code=item.code if item else None,
        title=spec.title,
        note=spec.note,
        reason_zh=item.why_zh if item else "",
        reason_en=item.why_en if item else "",
        how_to_fix_zh=item.how_to_fix_zh if item else "",
        how_to_fix_en=item.how_to_fix_en if item else "",
        severity=spec.severity,
        status=HazardStatus.OPEN,
        deadline_at=spec.deadline_at or hazard_deadline(now, spec.severity is Severity.MAJOR, policy),
        responsible_user_id=spec.responsible_user_id,
        opened_by_id=actor.user_id,
        opened_at=now,
        immediate_fix_possible=item.immediate_fix_possible if item else False,
    )
    session.add(hazard)
    await session.flush()
    session.add(_event(hazard, "open", None, actor, spec.note, spec.evidence_ids, now))
    await audit.record(
        session,
        "hazard.opened",
        tenant_id=tenant_id,
        object_type="hazard",
        object_id=hazard.id,
        detail={"severity": spec.severity.value, "item": hazard.item_code, "source": spec.source.value},
    )
    if hazard.severity is Severity.MAJOR:
        # Reported outside the tenant at once (the ladder's later steps are for what is not fixed).
        from portal.selfcheck.hazards.alerts import report_major

        await report_major(session, hazard)
    return hazard


def check_allowed(
    hazard: Hazard,
    action: Action,
    actor: HazardActor,
    *,
    reason: str = "",
    evidence_ids: list[str] | None = None,
) -> HazardStatus:
    """The status ``action`` leads to, or :class:`HazardRefused` naming the rule that forbids it."""
    target = TRANSITIONS.get((hazard.status, action))
    if target is None:
        raise HazardRefused("not_allowed_in_state")
    major = hazard.severity is Severity.MAJOR
    if action in (Action.VERIFY, Action.REJECT) and not policies.may_verify_hazard(actor, hazard):
        raise HazardRefused("major_needs_outside_verifier" if major else "verifier_role")
    if action is Action.REJECT and not reason.strip():
        raise HazardRefused("reason_required")
    if action in (Action.SUBMIT_FIX, Action.FIX_ON_THE_SPOT) and not reason.strip():
        raise HazardRefused("describe_the_fix")
    if action is Action.FIX_ON_THE_SPOT:
        if not hazard.immediate_fix_possible:
            raise HazardRefused("not_fixable_on_the_spot")
        if not evidence_ids:
            raise HazardRefused("evidence_required")
        if major:  # made safe now, but a major hazard still closes only on outside verification
            return HazardStatus.AWAITING_VERIFICATION
    if action is Action.SUBMIT_FIX and not evidence_ids:
        raise HazardRefused("evidence_required")
    return target


async def transition(
    session: AsyncSession,
    hazard: Hazard,
    action: Action,
    actor: HazardActor,
    *,
    reason: str = "",
    evidence_ids: list[str] | None = None,
    now: datetime | None = None,
) -> Hazard:
    now = now or datetime.now(UTC)
    target = check_allowed(hazard, action, actor, reason=reason, evidence_ids=evidence_ids)
    before = hazard.status
    hazard.status = target
    if target is HazardStatus.CLOSED:
        hazard.closed_at = now
    if action is Action.REJECT:
        hazard.rejections += 1
    session.add(_event(hazard, action.value, before, actor, reason, list(evidence_ids or []), now))
    await session.flush()
    await audit.record(
        session,
        f"hazard.{action.value}",
        tenant_id=hazard.tenant_id,
        object_type="hazard",
        object_id=hazard.id,
        detail={"from": before.value, "to": target.value},
    )
    if target is HazardStatus.CLOSED:
        for settle in _when_closed:
            await settle(session, now, [hazard.tenant_id])
    if target is HazardStatus.AWAITING_VERIFICATION:
        from portal.selfcheck.hazards.alerts import ask_for_verification

        await ask_for_verification(session, hazard, submitted_by=actor.user_id)
    return hazard


async def assign(
    session: AsyncSession,
    hazard: Hazard,
    user_id: uuid.UUID,
    actor: HazardActor,
    *,
    now: datetime | None = None,
) -> Hazard:
    """Name the person who rectifies the hazard (and answers for it in the ledger); they are told."""
    from portal.core.i18n import _
    from portal.notify.services import notify_in_own_language
    from portal.tenants.services import roles_of

    now = now or datetime.now(UTC)
    if hazard.status is HazardStatus.CLOSED:
        raise HazardRefused("not_allowed_in_state")
    if not policies.may_assign_hazard(actor, hazard):
        raise HazardRefused("assigner_role")
    if not await roles_of(session, hazard.tenant_id, user_id):
        raise HazardRefused("not_a_member")
    if hazard.responsible_user_id == user_id:
        return hazard
    hazard.responsible_user_id = user_id
    session.add(_event(hazard, "assign", hazard.status, actor, "", [], now))
    await session.flush()
    await audit.record(
        session,
        "hazard.assigned",
        tenant_id=hazard.tenant_id,
        object_type="hazard",
        object_id=hazard.id,
        detail={"user_id": str(user_id)},
    )
    await notify_in_own_language(
        session,
        [user_id],
        "hazard.assigned",
        lambda: (
            _("A hazard to rectify: %(title)s", title=hazard.title),
            _(
                "You were named to rectify it by %(date)s.",
                date=hazard.deadline_at.astimezone(clock.zone()).date().isoformat(),
            ),
        ),
        f"/t/{hazard.tenant_id}/hazards/{hazard.id}",
        f"assign:{hazard.id}:{user_id}",
        tenant_id=hazard.tenant_id,
    )
    return hazard


def mark_overdue(hazard: Hazard, now: datetime) -> bool:
    """Set the overdue flag if the deadline passed while not closed. True when it changed."""
    if hazard.status is not HazardStatus.CLOSED and hazard.overdue_at is None and hazard.deadline_at < now:
        hazard.overdue_at = now
        return True
    return False


async def list_hazards(
    session: AsyncSession, tenant_id: uuid.UUID, *, open_only: bool = False
) -> list[Hazard]:
    """Open hazards first (majors, then the oldest), then closed ones newest first."""
    from sqlalchemy import case, select

    stmt = select(Hazard).where(Hazard.tenant_id == tenant_id)
    if open_only:
        stmt = stmt.where(Hazard.status != HazardStatus.CLOSED)
    stmt = stmt.order_by(
        case((Hazard.status == HazardStatus.CLOSED, 1), else_=0),
        case((Hazard.severity == Severity.MAJOR, 0), else_=1),
        Hazard.opened_at,
    ).limit(200)
    return list((await session.execute(stmt)).scalars())


async def load_hazard(session: AsyncSession, hazard_id: uuid.UUID) -> Hazard | None:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    stmt = select(Hazard).where(Hazard.id == hazard_id).options(selectinload(Hazard.events))
    return (await session.execute(stmt)).scalar_one_or_none()


async def evidence_since_last_step(session: AsyncSession, hazard: Hazard) -> list[str]:
    """Photos attached to the hazard since its last transition: the proof of the step being taken now."""
    from portal.evidence.services import gallery
    from portal.models.evidence import OwnerType

    last = max((e.at for e in hazard.events), default=hazard.opened_at)
    return [str(e.id) for e in await gallery(session, OwnerType.HAZARD, hazard.id) if e.created_at >= last]
