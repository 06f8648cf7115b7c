"""Periodic jobs. The scheduler only *enqueues*; the run itself claims ``(job, period_key)`` in the
database first, so two schedulers (two worker processes, or a restart) never run one period twice, and a
missed run is caught up at the next tick with the same key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.db import Database
from portal.core.scheduling import claim_run
from portal.core.tenancy import Scope

log = structlog.get_logger("portal.scheduler")
SHANGHAI = ZoneInfo("Asia/Shanghai")

Job = Callable[[AsyncSession, str], Awaitable[None]]
JOBS: dict[str, tuple[Callable[[datetime], str], Job]] = {}


def periodic(name: str, period_key: Callable[[datetime], str]) -> Callable[[Job], Job]:
    def register(fn: Job) -> Job:
        JOBS[name] = (period_key, fn)
        return fn

    return register


def daily_key(now: datetime) -> str:
    return now.astimezone(SHANGHAI).strftime("%Y-%m-%d")


@periodic("tenants.nightly_readiness", daily_key)
async def nightly_readiness(session: AsyncSession, period_key: str) -> None:
    """Nightly safety net: recompute every active tenant's readiness (through the outbox, one row each)."""
    from portal.core import outbox
    from portal.tenants.models import Tenant
    from portal.tenants.services import READINESS_TOPIC

    for tid in (await session.execute(select(Tenant.id).where(Tenant.active.is_(True)))).scalars():
        await outbox.emit(
            session, READINESS_TOPIC, {"tenant_id": str(tid), "period": period_key}, tenant_id=tid
        )


async def run_claimed(db: Database, job: str, period_key: str) -> bool:
    """Run ``job`` for ``period_key`` unless another process already did. The claim and the job's writes
    commit together: a crash mid-job leaves no claim, so the next tick retries."""
    _key_fn, fn = JOBS[job]
    async with db.session(Scope.system(f"periodic {job}")) as session:
        if not await claim_run(session, job, period_key):
            log.info("periodic_skipped", job=job, period=period_key)
            return False
        await fn(session, period_key)
    log.info("periodic_done", job=job, period=period_key)
    return True


def tick(now: datetime | None = None) -> None:
    """Enqueue every periodic job for its current period, and the outbox sweeper."""
    from worker.actors import run_periodic, sweep_outbox

    now = now or datetime.now(UTC)
    sweep_outbox.send()
    for name, (key_fn, _fn) in JOBS.items():
        run_periodic.send(name, key_fn(now))


def start(interval_s: int = 60) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        tick,
        "interval",
        seconds=interval_s,
        next_run_time=datetime.now(UTC),
        id="tick",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
