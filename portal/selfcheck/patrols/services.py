"""防火巡查: the daily patrol of key units (61号令 第25条; domain README sections 3 and 10).

Which rounds a key unit logs on a day is :func:`required_rounds`. A *patrol day* is missed unless every
required round of that day is logged (risk-grade.md, "patrol day"); :func:`missed_days` is what the risk
grade (F4) and the accountability ledger read. A patrol is one phone form: the KEY-P checklist, every item
pass or fail (a failure needs a note and opens a hazard, source ``patrol``, exactly as the self-check does).
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core import clock
from portal.core.db import AnySelect
from portal.models.selfcheck import Answer, Checklist, HazardSource, Patrol, PatrolRound, Severity
from portal.models.tenants import Tenant, TenantKind, UnitCategory
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.hazards.services import OpenHazard, open_hazard
from portal.selfcheck.policies import ActorKind, HazardActor

log = structlog.get_logger("portal.selfcheck.patrols.services")

ROUND_EVERY = timedelta(hours=2)  # public gathering places while open; night rounds (GB/T 40248 7.3.5)
NIGHT_START, NIGHT_END = time(22, 0), time(6, 0)
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class PatrolRefused(ValueError):
    """A patrol the rules do not accept; ``code`` names the rule for a translated message."""

    def __init__(self, code: str, items: Mapping[str, str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.items = dict(items or {})  # item code → refusal code, for per-item messages


@dataclass(frozen=True)
class Slot:
    """One required round: it is logged by a patrol of that round made in ``[start, end)`` (the daily round:
    any time of its day). ``day`` is the patrol day the slot belongs to (the local day it starts on)."""

    round: PatrolRound
    start: datetime  # aware, in the display time zone
    end: datetime

    @property
    def day(self) -> date:
        return self.start.date()

    @property
    def key(self) -> str:
        return f"{self.round.value}@{self.start.strftime('%Y-%m-%dT%H:%M')}"

    def covers(self, patrol: Patrol) -> bool:
        if patrol.round is not self.round or patrol.day != self.day.isoformat():
            return False
        return self.round is PatrolRound.DAILY or self.start <= patrol.at.astimezone(clock.zone()) < self.end


def patrols_required(tenant: Tenant) -> bool:
    """Daily patrols are the duty of key units (消防安全重点单位) only."""
    return tenant.kind is TenantKind.UNIT and tenant.category is UnitCategory.KEY


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(0, 0), clock.zone()) + timedelta(hours=hour, minutes=minute)


def _opening(hours: str, day: date) -> list[tuple[datetime, datetime]]:
    """The opening intervals that start on ``day``: ``"10:00-22:00"``, ``"18:00-02:00"`` (past midnight),
    ``"00:00-24:00"``; several ranges separated by commas. Unreadable text gives none (and a log line)."""
    out = []
    for part in hours.split(","):
        match = _HOURS.match(part)
        if not match:
            log.warning("opening_hours_unreadable", value=hours)
            return []
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            log.warning("opening_hours_unreadable", value=hours)
            return []
        start, end = _at(day, h1, m1), _at(day, h2, m2)
        if end <= start:  # closes after midnight (or "00:00-00:00": round the clock)
            end += timedelta(days=1)
        out.append((start, end))
    return out


def _merged(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:  # overlapping or back to back: never closed in between
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def slots(tenant: Tenant, day: date) -> list[Slot]:
    """The required rounds of ``day`` with their windows; see :func:`required_rounds` for the rules."""
    if not patrols_required(tenant):
        return []
    premises = tenant.premises or {}
    start_of_day = _at(day, 0, 0)
    out = [Slot(PatrolRound.DAILY, start_of_day, start_of_day + timedelta(days=1))]
    opening_starts: set[datetime] = set()
    if premises.get("public_gathering_place"):
        hours = str(premises.get("opening_hours") or "")
        intervals = _opening(hours, day - timedelta(days=1)) + _opening(hours, day) if hours else []
        for open_at, close_at in _merged(intervals):
            at = open_at
            while at < close_at:
                out.append(Slot(PatrolRound.OPENING, at, min(at + ROUND_EVERY, close_at)))
                opening_starts.add(at)
                at += ROUND_EVERY
            out.append(Slot(PatrolRound.CLOSING, close_at, close_at + ROUND_EVERY))
    if premises.get("night_patrol"):
        for night_day in (day - timedelta(days=1), day):
            at = datetime.combine(night_day, NIGHT_START, clock.zone())
            night_end = datetime.combine(night_day + timedelta(days=1), NIGHT_END, clock.zone())
            while at < night_end:
                if at not in opening_starts:  # open then: the 2-hourly opening round walks the place
                    out.append(Slot(PatrolRound.NIGHT, at, min(at + ROUND_EVERY, night_end)))
                at += ROUND_EVERY
    order = list(PatrolRound)
    return sorted((s for s in out if s.day == day), key=lambda s: (s.start, order.index(s.round)))


def required_rounds(tenant: Tenant, day: date) -> list[tuple[PatrolRound, datetime]]:
    """The rounds a tenant must log on ``day`` (in the display time zone), as ``(round, slot start)`` in
    time order.

    * not a key unit: none (patrols are not required);
    * every key unit: one ``daily`` round, any time of the day (slot start: midnight);
    * ``premises.public_gathering_place``: an ``opening`` round every 2 hours from opening time while open
      (``premises.opening_hours``, e.g. ``"10:00-22:00"``; ``"18:00-02:00"`` runs past midnight;
      ``"00:00-24:00"`` never closes), then a ``closing`` round at closing time (leftover embers);
    * ``premises.night_patrol``: a ``night`` round every 2 hours from 22:00 to 06:00, except where an
      opening round starts at the same time (a hotel open round the clock walks the place anyway).

    A slot belongs to the day it starts on: the 00:00 round of a night that began at 22:00 the day before
    is part of this day. Each timed slot lasts 2 hours (an opening slot ends at closing time at the latest);
    a patrol logged inside it covers it.
    """
    return [(s.round, s.start) for s in slots(tenant, day)]


def local_day(moment: datetime) -> date:
    return moment.astimezone(clock.zone()).date()


def _days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


@functools.cache
def _patrols_between() -> AnySelect:
    # Built once: the tenant dashboard of every key unit reads its patrol days on each visit.
    return (
        select(Patrol)
        .where(
            Patrol.tenant_id == bindparam("tenant_id"),
            Patrol.day >= bindparam("since"),
            Patrol.day <= bindparam("until"),
        )
        .order_by(Patrol.at)
    )


async def patrols_between(
    session: AsyncSession, tenant_id: uuid.UUID, since: date, until: date
) -> list[Patrol]:
    """The tenant's patrols whose patrol day is in ``[since, until]``, in time order."""
    params = {"tenant_id": tenant_id, "since": since.isoformat(), "until": until.isoformat()}
    return list((await session.execute(_patrols_between(), params)).scalars())


@dataclass(frozen=True)
class DayRecord:
    day: date
    rounds: list[tuple[Slot, Patrol | None]]  # each required slot with the patrol that logged it
    patrols: list[Patrol]  # every patrol of the day (extra rounds included)

    @property
    def complete(self) -> bool:
        return all(p is not None for _s, p in self.rounds)

    @property
    def logged(self) -> int:
        return sum(p is not None for _s, p in self.rounds)

    @property
    def findings(self) -> int:
        return sum(p.findings for p in self.patrols)


def day_record(tenant: Tenant, day: date, patrols: Iterable[Patrol]) -> DayRecord:
    todays = [p for p in patrols if p.day == day.isoformat()]
    return DayRecord(
        day, [(s, next((p for p in todays if s.covers(p)), None)) for s in slots(tenant, day)], todays
    )


async def records(session: AsyncSession, tenant: Tenant, since: date, until: date) -> list[DayRecord]:
    """One record per day of ``[since, until]``, newest first."""
    patrols = await patrols_between(session, tenant.id, since, until)
    return [day_record(tenant, d, patrols) for d in reversed(_days(since, until))]


async def missed_days(session: AsyncSession, tenant: Tenant, since: date, until: date) -> list[date]:
    """Days of ``[since, until]`` (both included) on which some required round was not logged. Empty for
    tenants that need no patrols. Callers decide the window (the risk grade: 90 days, never before the
    tenant was onboarded)."""
    if not patrols_required(tenant) or until < since:
        return []
    return sorted(r.day for r in await records(session, tenant, since, until) if not r.complete)


async def streak(session: AsyncSession, tenant: Tenant, today: date, *, limit: int = 366) -> int:
    """How many days in a row are complete, counting back from today (or from yesterday while today is
    still under way), never before the day the tenant was onboarded."""
    if not patrols_required(tenant):
        return 0
    first = max(today - timedelta(days=limit), local_day(tenant.created_at))
    days = await records(session, tenant, first, today)
    if days and not days[0].complete:
        days = days[1:]  # today is not over yet
    count = 0
    for record in days:
        if not record.complete:
            break
        count += 1
    return count


def open_slots(tenant: Tenant, now: datetime) -> list[Slot]:
    """The slots a patrol made ``now`` can log: today's daily round, and every timed slot whose window
    contains ``now`` (a closing slot that began yesterday evening may still be open after midnight)."""
    today = local_day(now)
    candidates = slots(tenant, today - timedelta(days=1)) + slots(tenant, today)
    return [
        s
        for s in candidates
        if (s.round is PatrolRound.DAILY and s.day == today)
        or (s.round is not PatrolRound.DAILY and s.start <= now < s.end)
    ]


async def patrol_checklist(session: AsyncSession, tenant: Tenant) -> Checklist:
    """The KEY-P checklist with its items; refused for tenants that need no patrols."""
    if not patrols_required(tenant):
        raise PatrolRefused("not_required")
    checklist = await catalogue.checklist_for(session, tenant, frequency="daily")
    if checklist is None:
        raise PatrolRefused("no_checklist")
    return checklist


@dataclass(frozen=True)
class ItemResult:
    answer: Answer
    note: str = ""


async def log_patrol(
    session: AsyncSession,
    tenant: Tenant,
    round_: PatrolRound,
    results: Mapping[str, ItemResult],
    *,
    user_id: uuid.UUID | None,
    now: datetime | None = None,
) -> tuple[Patrol, list[uuid.UUID]]:
    """Record one round. Items not in ``results`` passed. Every failed item needs a note and opens a hazard
    (source ``patrol``) with the item's reason and fix. Returns the patrol and the new hazard ids."""
    now = now or datetime.now(UTC)
    checklist = await patrol_checklist(session, tenant)
    items = {i.code: i for i in checklist.items}
    unknown = sorted(set(results) - set(items))
    if unknown:
        raise PatrolRefused("unknown_item", {code: "unknown_item" for code in unknown})
    problems = {
        code: "fail_needs_note"
        for code, r in results.items()
        if r.answer is Answer.FAIL and not r.note.strip()
    }
    problems.update(
        {code: "bad_answer" for code, r in results.items() if r.answer not in (Answer.PASS, Answer.FAIL)}
    )
    if problems:
        raise PatrolRefused("item_problems", problems)
    slot = next((s for s in open_slots(tenant, now) if s.round is round_), None)
    if slot is None:
        raise PatrolRefused("round_not_due")
    answers = {code: results.get(code, ItemResult(Answer.PASS)) for code in items}
    patrol = Patrol(
        tenant_id=tenant.id,
        checklist_id=checklist.id,
        round=round_,
        day=slot.day.isoformat(),
        at=now,
        patroller_id=user_id,
        results={
            code: {"answer": r.answer.value, "note": r.note.strip()[:2000]} for code, r in answers.items()
        },
        findings=sum(r.answer is Answer.FAIL for r in answers.values()),
    )
    session.add(patrol)
    await session.flush()
    actor = HazardActor(ActorKind.MEMBER, user_id)
    opened = []
    for code, r in answers.items():
        if r.answer is not Answer.FAIL:
            continue
        item = items[code]
        hazard = await open_hazard(
            session,
            tenant.id,
            OpenHazard(
                source=HazardSource.PATROL,
                title=item.text_zh,
                severity=Severity(item.severity),
                item=item,
                note=r.note.strip()[:2000],
            ),
            actor,
            now=now,
        )
        opened.append(hazard.id)
    await audit.record(
        session,
        "patrol.logged",
        tenant_id=tenant.id,
        object_type="patrol",
        object_id=patrol.id,
        detail={
            "round": round_.value,
            "day": patrol.day,
            "findings": patrol.findings,
            "hazards": [str(h) for h in opened],
        },
    )
    return patrol, opened
