"""Months of believable history for 示例市, produced by the portal's own services (a ``portal demo`` step).

The issue asks for history "produced by these services (not inserted rows)". So this is a small
discrete-event simulation: it plans, per tenant and month, what the tenant's people do and when — answer the
monthly self-check item by item, submit it, rectify what failed (with a photo, as the rules demand), have it
verified, patrol — and replays the plan in time order, calling the same services the pages call, each
with ``now=`` set to the simulated moment. The scheduler's daily jobs (``jobs.flag_overdue`` and
``accountability.run``) run at 00:30 of every simulated day, so overdue flags, the ledger and its
escalations are what the real rules make of the history; nothing here writes them.

Choices worth knowing:

* **Who has history** (:data:`HISTORY`): eight tenants over every district, category and insurer — a few
  keep up, a few fall behind. Time is the limit (``make run`` and the tests seed the demo): every patrol round
  is a service call (~5 ms on SQLite) and the key units with timed rounds (hospital, mall, hotel, KTV,
  library...) log 5–13 rounds a day, seconds per tenant-month, so the two key units here patrol once a day;
  and the daily jobs' cost grows with the open ledger entries (see *Signing*). The other tenants stay as
  ``seed_cycle`` leaves them: onboarded today, with this month's self-check open (last month's is not due:
  they had not joined yet).
* **Onboarding date.** Patrol duty, the patrol log and the missed-patrol lapse all start at the tenant's
  onboarding (``Tenant.created_at``), and ``register_tenant`` has no ``now=``. A history tenant is therefore
  back-dated to the day before its history starts (:func:`_onboarded_before`) — the one write here that is
  not a service call, and no rule of the cycle is involved.
* **Signing**: the responsible person signs each submitted report with a passkey on their (software) phone
  (``phones.py``) — a real WebAuthn assertion over the report's hash, verified by the same code as a
  browser's — at a moment of the timeline (``Simulation._signing_due`` in
  :mod:`portal.demo.history_simulation`), so the daily jobs that run
  afterwards see it signed on time when it was. Each history unit's year commitment is prepared and signed
  at the start of the history.
* **Reproducible**: one ``random.Random`` per tenant, seeded with :data:`SEED` and the tenant's code; the same
  day gives the same city.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
import structlog.testing
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import clock
from portal.demo.history_habits import HISTORY, base_code
from portal.demo.history_simulation import Simulation
from portal.demo.history_timeline import History, Unit, first_day, local
from portal.models.grid import WardenAssignment
from portal.models.identity import User
from portal.models.notify import Notification
from portal.models.tenants import Tenant
from portal.selfcheck.deadlines import period_of, previous_period
from portal.selfcheck.patrols import services as patrols

if TYPE_CHECKING:
    from portal.demo.seed import DemoCity

SEED = 2611
PERIODS = 6  # past periods with history, before the current month
STILL_NEW = timedelta(days=3)  # messages of the story's last days stay unread
log = structlog.get_logger("portal.demo")


# -- entry points ----------------------------------------------------------------------------------


async def _wardens(session: AsyncSession, tenant: Tenant) -> list[User]:
    if tenant.grid_id is None:
        return []
    rows = await session.execute(
        select(User)
        .join(WardenAssignment, WardenAssignment.user_id == User.id)
        .where(WardenAssignment.grid_id == tenant.grid_id)
        .order_by(WardenAssignment.created_at)
    )
    return list(rows.scalars())


def _onboarded_before(tenant: Tenant, start: datetime) -> None:
    """Back-date onboarding to before the history (see the module docstring): patrol duty, the patrol log
    and the missed-patrol lapse count from ``created_at``, and history before it would not count."""
    tenant.created_at = start - timedelta(days=1)


async def build_history(session: AsyncSession, city: DemoCity, *, now: datetime | None = None) -> History:
    """Replay :data:`PERIODS` months (and this month so far) for the :data:`HISTORY` tenants of ``city``."""
    end = now or datetime.now(UTC)
    current = period_of(end)
    periods = [current]
    for _n in range(PERIODS):
        periods.append(previous_period(periods[-1]))  # periods[k]: k months back
    start = local(first_day(periods[-1]))
    history = History(start=start, end=end)
    sim = Simulation(session, history)
    raw = {t["code"]: t for t in city.raw["tenants"]}
    for code, tenant in sorted(city.tenants.items()):
        habits = HISTORY.get(base_code(code))
        members = raw[code].get("members") or {}
        if habits is None or not members.get("responsible"):
            continue
        responsible = city.users[members["responsible"]["login"]]
        manager = city.users[members["manager"]["login"]] if members.get("manager") else responsible
        unit = Unit(
            tenant=tenant,
            code=base_code(code),
            habits=habits,
            rng=random.Random(f"{SEED}:{base_code(code)}"),
            responsible=responsible,
            manager=manager,
            staff=[city.users[p["login"]] for p in members.get("staff") or []],
            wardens=await _wardens(session, tenant),
        )
        if not unit.wardens:
            continue  # nobody outside the unit could verify a major hazard: no believable history
        sim.units.append(unit)
        history.tenants.append(code)
        _onboarded_before(tenant, start)
    await session.flush()
    last_day = end.astimezone(clock.zone()).date()
    for unit in sim.units:
        sim.plan_commitments(unit, start)
        for months_back in range(PERIODS, -1, -1):
            sim.plan_month(unit, periods[months_back], months_back)
        if patrols.patrols_required(unit.tenant):
            sim.plan_patrols(unit, start.astimezone(clock.zone()).date(), last_day)
    sim.plan_daily_jobs(start.astimezone(clock.zone()).date() + timedelta(days=1), last_day)
    replay_began = datetime.now(UTC)

    async def date_the_messages(at: datetime) -> None:
        """The services put their messages in the inbox at the real moment; they belong to the story's.
        Older than a few days, they have been read: a fresh demo's inbox holds this week's news only."""
        await session.flush()
        await session.execute(
            update(Notification)
            .where(Notification.created_at >= replay_began)
            .values(created_at=at, read_at=at if at < end - STILL_NEW else None)
        )

    await sim.timeline.run(after=date_the_messages)
    await session.flush()
    return history


@contextmanager
def _quiet_jobs() -> Iterator[None]:
    """The replay runs the daily jobs some 200 times; their one-line reports would bury the demo's output.
    Keep what is worth reading: warnings and worse."""
    with structlog.testing.capture_logs() as captured:
        try:
            yield
        finally:
            kept = [e for e in captured if e.get("log_level") in ("warning", "error", "critical")]
    for entry in kept:
        level, event = entry.pop("log_level"), entry.pop("event", "")
        getattr(log, level)(event, **entry)


async def seed_history(session: AsyncSession, city: DemoCity) -> None:
    """The ``portal demo`` step (after ``seed_cycle``: the catalogue must be loaded)."""
    with _quiet_jobs():
        history = await build_history(session, city)
    log.info(
        "demo_history",
        tenants=len(history.tenants),
        since=history.start.isoformat(),
        signed=len(history.signed),
        **dict(sorted(history.counts.items())),
    )
