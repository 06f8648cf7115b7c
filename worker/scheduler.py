"""Periodic jobs. The scheduler only *enqueues*; the run itself claims ``(job, period_key)`` in the
database first, so two schedulers (two worker processes, or a restart) never run one period twice, and a
missed run is caught up at the next tick with the same key."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from portal.core.db import Database
from portal.core.scheduling import JOBS, Job, claim_run, daily_key, monthly_key
from portal.core.tenancy import Scope

log = structlog.get_logger("portal.scheduler")

__all__ = ["JOBS", "Job", "daily_key", "monthly_key", "run_claimed", "start", "tick"]


async def run_claimed(db: Database, job: str, period_key: str) -> bool:
    """Run ``job`` for ``period_key`` unless another process already did. The claim and the job's writes
    commit together: a crash mid-job leaves no claim, so the next tick retries."""
    _key_fn, fn = JOBS[job]
    async with db.session(Scope.system(f"periodic {job}")) as session:
        if not await claim_run(session, job, period_key):
            log.debug("periodic_skipped", job=job, period=period_key)
            return False
        await fn(session, period_key)
    log.debug("periodic_done", job=job, period=period_key)  # the job's own line says what it did
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
