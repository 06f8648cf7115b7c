"""The figures of the tenant's home page (the dashboard), read in a few cheap queries.

The page is the most visited one of the portal, so every figure is either an aggregate computed by the
database (open hazards by severity and age) or a handful of narrow rows (twelve self-checks, the hazards
closed in a year); the patrol streak and the ledger come from the services that own them
(:mod:`portal.selfcheck.patrols.services`, :mod:`portal.selfcheck.ledger.services`), never re-implemented
here.
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from portal.core import clock
from portal.core.db import AnySelect
from portal.models.selfcheck import (
    AccountabilityEntry,
    Hazard,
    HazardStatus,
    SelfCheck,
    SelfCheckStatus,
    Severity,
)
from portal.models.tenants import Tenant
from portal.selfcheck.deadlines import parse_period, period_of, previous_period, signing_deadline
from portal.selfcheck.ledger import services as accountability
from portal.selfcheck.patrols import services as patrols

MONTHS = 12
LEDGER_SHOWN = 5
# The streak is counted over this many days at most: enough to say "a long streak" without reading a
# year of patrols on every visit of the home page.
STREAK_WINDOW_DAYS = 60
MISSED_WINDOW_DAYS = 30


class Outcome(enum.StrEnum):
    """What became of one period's self-check (the compliance chart's categories)."""

    ON_TIME = "on_time"  # signed by its deadline
    LATE = "late"  # signed after its deadline
    UNSIGNED = "unsigned"  # submitted, deadline passed, never signed
    MISSED = "missed"  # deadline passed before it was submitted (or it was never opened)
    UNDER_WAY = "under_way"  # the deadline has not come yet
    NOT_JOINED = "not_joined"  # the unit was not on the platform yet: no figure, and no blame


# Best first. The chart draws each outcome at its own height so that colour is never the only cue.
OUTCOMES = (Outcome.ON_TIME, Outcome.LATE, Outcome.UNSIGNED, Outcome.MISSED, Outcome.UNDER_WAY)


class AgeBucket(enum.StrEnum):
    UNDER_7 = "under_7"  # opened less than 7 days ago
    FROM_7_TO_30 = "7_to_30"  # 7 to 30 days
    OVER_30 = "over_30"  # more than 30 days


AGE_BUCKETS = tuple(AgeBucket)
SEVERITIES = (Severity.MAJOR, Severity.GENERAL)  # majors first: they are what a visitor must see


def is_overdue(sc: SelfCheck, now: datetime) -> bool:
    """Overdue when flagged, or already past its deadline unsigned (the flagging job may not have run)."""
    if sc.status is SelfCheckStatus.SIGNED:
        return False
    return sc.overdue_at is not None or sc.deadline_at < now


def outcome_of(sc: SelfCheck | None, period: str, now: datetime, joined: str) -> Outcome:
    if sc is None:
        if signing_deadline(period) >= now:
            return Outcome.UNDER_WAY
        # The month the unit joined counts only if its self-check was opened: joining on the 30th is no
        # lapse of that month's self-check.
        return Outcome.NOT_JOINED if period <= joined else Outcome.MISSED
    if sc.status is SelfCheckStatus.SIGNED:
        assert sc.signed_at is not None
        return Outcome.ON_TIME if sc.signed_at <= sc.deadline_at else Outcome.LATE
    if sc.deadline_at >= now:
        return Outcome.UNDER_WAY
    return Outcome.UNSIGNED if sc.status is SelfCheckStatus.SUBMITTED else Outcome.MISSED


@dataclass(frozen=True)
class Month:
    """One period of the compliance chart and its table."""

    period: str
    outcome: Outcome
    selfcheck: SelfCheck | None
    hazards_closed: int = 0
    hazards_closed_on_time: int = 0

    @property
    def closed_on_time_percent(self) -> int | None:
        if not self.hazards_closed:
            return None
        return round(100 * self.hazards_closed_on_time / self.hazards_closed)


@dataclass(frozen=True)
class HazardAgeing:
    """Open hazards (anything not closed) by severity and age, and how many are past their deadline."""

    counts: dict[tuple[Severity, AgeBucket], int]
    past_deadline: dict[Severity, int]

    @property
    def severities(self) -> tuple[Severity, ...]:
        return SEVERITIES

    @property
    def buckets(self) -> tuple[AgeBucket, ...]:
        return AGE_BUCKETS

    def count(self, severity: Severity, bucket: AgeBucket) -> int:
        return self.counts.get((severity, bucket), 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def total_past_deadline(self) -> int:
        return sum(self.past_deadline.values())


@dataclass(frozen=True)
class PatrolFigures:
    required: bool
    streak: int = 0
    streak_capped: bool = False  # the streak is at least ``streak`` days (the window's length)
    missed_days: int = 0  # in the last ``window_days`` days before today
    window_days: int = 0


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    period: str
    current: SelfCheck | None  # this period's self-check
    previous: SelfCheck | None  # last period's, while it still needs attention (not signed)
    months: list[Month]  # the last ``MONTHS`` periods, oldest first, this period last
    hazards: HazardAgeing
    patrols: PatrolFigures
    ledger: list[accountability.LedgerRow] = field(default_factory=list)  # open entries only
    ledger_open: int = 0
    ledger_shown: bool = False  # whether the viewer may see the ledger at all

    @property
    def current_overdue(self) -> bool:
        return self.current is not None and is_overdue(self.current, self.now)

    @property
    def previous_overdue(self) -> bool:
        return self.previous is not None and is_overdue(self.previous, self.now)


def periods_back(period: str, count: int) -> list[str]:
    """``count`` periods ending with ``period``, oldest first."""
    out = [period]
    while len(out) < count:
        out.append(previous_period(out[-1]))
    return out[::-1]


# The page's statements are built once (see portal.core.db.AnySelect); the values come at execution.


@functools.cache
def _selfchecks_since() -> AnySelect:
    return select(SelfCheck).where(
        SelfCheck.tenant_id == bindparam("tenant_id"), SelfCheck.period >= bindparam("first")
    )


async def _selfchecks(session: AsyncSession, tenant_id: uuid.UUID, first: str) -> dict[str, SelfCheck]:
    rows = await session.execute(_selfchecks_since(), {"tenant_id": tenant_id, "first": first})
    return {sc.period: sc for sc in rows.scalars()}


@functools.cache
def _closed_since() -> AnySelect:
    return select(Hazard.closed_at, Hazard.deadline_at).where(
        Hazard.tenant_id == bindparam("tenant_id"),
        Hazard.status == HazardStatus.CLOSED,
        Hazard.closed_at >= bindparam("since"),
    )


async def _closed_hazards(
    session: AsyncSession, tenant_id: uuid.UUID, since: datetime
) -> Sequence[tuple[datetime, datetime]]:
    """(closed_at, deadline_at) of the hazards closed since ``since``: two columns, a year's worth."""
    rows = await session.execute(_closed_since(), {"tenant_id": tenant_id, "since": since})
    return [(closed, deadline) for closed, deadline in rows.all() if closed is not None]


_CELLS = [(sev, bucket) for sev in SEVERITIES for bucket in AGE_BUCKETS]


@functools.cache
def _ageing() -> AnySelect:
    """Conditional sums rather than GROUP BY a CASE: PostgreSQL would not recognise the grouped CASE and
    the selected one as the same expression (each carries its own bound parameters)."""
    week: BindParameter[datetime] = bindparam("week")
    month: BindParameter[datetime] = bindparam("month")
    now: BindParameter[datetime] = bindparam("now")
    ages = {
        AgeBucket.UNDER_7: Hazard.opened_at > week,
        AgeBucket.FROM_7_TO_30: and_(Hazard.opened_at <= week, Hazard.opened_at >= month),
        AgeBucket.OVER_30: Hazard.opened_at < month,
    }
    columns = [
        func.coalesce(func.sum(case((and_(Hazard.severity == sev, ages[bucket]), 1), else_=0)), 0)
        for sev, bucket in _CELLS
    ]
    late = [
        func.coalesce(func.sum(case((and_(Hazard.severity == sev, Hazard.deadline_at < now), 1), else_=0)), 0)
        for sev in SEVERITIES
    ]
    return select(*columns, *late).where(
        Hazard.tenant_id == bindparam("tenant_id"), Hazard.status != HazardStatus.CLOSED
    )


async def hazard_ageing(session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> HazardAgeing:
    """One aggregate row: a conditional count per severity × age bucket, and per severity past deadline."""
    params = {
        "tenant_id": tenant_id,
        "week": now - timedelta(days=7),
        "month": now - timedelta(days=30),
        "now": now,
    }
    row = (await session.execute(_ageing(), params)).one()
    counts = {cell: int(row[n]) for n, cell in enumerate(_CELLS)}
    past = {sev: int(row[len(_CELLS) + n]) for n, sev in enumerate(SEVERITIES)}
    return HazardAgeing(counts, past)


async def patrol_figures(session: AsyncSession, tenant: Tenant, today: date) -> PatrolFigures:
    if not patrols.patrols_required(tenant):
        return PatrolFigures(required=False)
    streak = await patrols.streak(session, tenant, today, limit=STREAK_WINDOW_DAYS)
    # Missed days before today (today is still under way), never before the unit was onboarded.
    until = today - timedelta(days=1)
    since = max(today - timedelta(days=MISSED_WINDOW_DAYS), patrols.local_day(tenant.created_at))
    missed = await patrols.missed_days(session, tenant, since, until)
    return PatrolFigures(
        required=True,
        streak=streak,
        streak_capped=streak >= STREAK_WINDOW_DAYS,
        missed_days=len(missed),
        window_days=MISSED_WINDOW_DAYS,
    )


async def _open_ledger(
    session: AsyncSession, tenant_id: uuid.UUID
) -> tuple[list[accountability.LedgerRow], int]:
    # The ledger lists open entries first, so its first rows are the ones the dashboard shows.
    rows = await accountability.ledger(session, tenant_id, limit=LEDGER_SHOWN)
    shown = [r for r in rows if r.entry.resolved_at is None]
    if len(shown) < LEDGER_SHOWN:
        return shown, len(shown)
    total = (
        await session.execute(
            select(func.count()).where(
                AccountabilityEntry.tenant_id == tenant_id, AccountabilityEntry.resolved_at.is_(None)
            )
        )
    ).scalar_one()
    return shown, int(total)


async def build(
    session: AsyncSession, tenant: Tenant, *, with_ledger: bool, now: datetime | None = None
) -> Dashboard:
    """The dashboard of ``tenant`` as seen at ``now``. ``with_ledger``: the viewer may see the ledger."""
    now = now or datetime.now(UTC)
    period = period_of(now)
    periods = periods_back(period, MONTHS)
    checks = await _selfchecks(session, tenant.id, periods[0])
    joined = period_of(tenant.created_at)
    closed: dict[str, list[bool]] = {}
    year, month = parse_period(periods[0])
    month_start = datetime(year, month, 1, tzinfo=clock.zone())  # periods are months of the display time zone
    for closed_at, deadline_at in await _closed_hazards(session, tenant.id, month_start):
        closed.setdefault(period_of(closed_at), []).append(closed_at <= deadline_at)
    months = [
        Month(
            period=p,
            outcome=outcome_of(checks.get(p), p, now, joined),
            selfcheck=checks.get(p),
            hazards_closed=len(closed.get(p, [])),
            hazards_closed_on_time=sum(closed.get(p, [])),
        )
        for p in periods
    ]
    previous = checks.get(periods[-2])
    if previous is not None and previous.status is SelfCheckStatus.SIGNED:
        previous = None
    ledger_rows: list[accountability.LedgerRow] = []
    ledger_open = 0
    if with_ledger:
        ledger_rows, ledger_open = await _open_ledger(session, tenant.id)
    return Dashboard(
        now=now,
        period=period,
        current=checks.get(period),
        previous=previous,
        months=months,
        hazards=await hazard_ageing(session, tenant.id, now),
        patrols=await patrol_figures(session, tenant, patrols.local_day(now)),
        ledger=ledger_rows,
        ledger_open=ledger_open,
        ledger_shown=with_ledger,
    )
