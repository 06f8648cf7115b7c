"""Periodic jobs run once per (job, period) whatever the number of schedulers, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import outbox, scheduling
from portal.core.db import Database
from portal.core.outbox import OutboxMessage
from portal.core.scheduling import ScheduledRun
from portal.core.tenancy import Scope
from portal.models.identity import User
from portal.models.tenants import Tenant
from portal.tenants import services as ts
from portal.tenants.services import READINESS_TOPIC
from tests.fixtures.factories import World
from worker import scheduler
from worker.scheduler import daily_key, run_claimed

JOB = "test.scheduler.make_user"
FLAKY_JOB = "test.scheduler.flaky"


async def _make_user(session: AsyncSession, period_key: str) -> None:
    """The job's visible effect: a user whose unique login is the period key (a second run would fail)."""
    await ts.create_user(session, login=f"run.{period_key}", display_name="periodic")


_flaky_failures: set[str] = set()


async def _flaky(session: AsyncSession, period_key: str) -> None:
    """Writes, then crashes the first time it runs for a period."""
    await ts.create_user(session, login=f"run.{period_key}", display_name="periodic")
    if period_key not in _flaky_failures:
        _flaky_failures.add(period_key)
        raise RuntimeError("worker killed mid-job")


@pytest.fixture(autouse=True)
def test_jobs() -> Iterator[None]:
    """Register the test jobs for this module only, so no scheduler tick ever enqueues them."""
    scheduling.register(JOB, daily_key, _make_user)
    scheduling.register(FLAKY_JOB, daily_key, _flaky)
    outbox.set_dispatcher(None)  # rows emitted here stay pending; no broker in these tests
    yield
    scheduler.JOBS.pop(JOB, None)
    scheduler.JOBS.pop(FLAKY_JOB, None)


def _key() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


async def _runs(db: Database, job: str, period_key: str) -> int:
    async with db.session(Scope.system("test read")) as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(ScheduledRun)
                    .where(ScheduledRun.job == job, ScheduledRun.period_key == period_key)
                )
            ).scalar_one()
        )


async def _users(db: Database, period_key: str) -> int:
    async with db.session(Scope.system("test read")) as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(User).where(User.login == f"run.{period_key}")
                )
            ).scalar_one()
        )


async def test_same_period_runs_once(database: Database) -> None:
    key = _key()
    assert await run_claimed(database, JOB, key) is True
    assert await run_claimed(database, JOB, key) is False
    assert await _runs(database, JOB, key) == 1
    assert await _users(database, key) == 1
    # The next period is a new run.
    other = _key()
    assert await run_claimed(database, JOB, other) is True
    assert await _users(database, other) == 1


async def test_concurrent_schedulers_run_a_period_once(database: Database) -> None:
    key = _key()
    # Two worker processes, each with its own engine, tick at the same moment.
    schedulers = [Database(database.settings) for _ in range(2)]
    try:
        results = await asyncio.gather(*(run_claimed(db, JOB, key) for db in schedulers))
    finally:
        for db in schedulers:
            await db.dispose()
    assert sorted(results) == [False, True]
    assert await _runs(database, JOB, key) == 1
    assert await _users(database, key) == 1


async def test_a_crashed_run_leaves_no_claim_and_is_caught_up(database: Database) -> None:
    key = _key()
    with pytest.raises(RuntimeError, match="killed"):
        await run_claimed(database, FLAKY_JOB, key)
    # The claim and the job's writes were rolled back together...
    assert await _runs(database, FLAKY_JOB, key) == 0
    assert await _users(database, key) == 0
    # ...so the next tick, with the same period key, runs it.
    assert await run_claimed(database, FLAKY_JOB, key) is True
    assert await run_claimed(database, FLAKY_JOB, key) is False
    assert await _users(database, key) == 1


async def test_nightly_readiness_emits_one_row_per_active_tenant(database: Database, world: World) -> None:
    a, b, c = (world.tenants[k].id for k in "abc")
    async with database.session(Scope.system("test deactivate")) as session:
        tenant_b = await session.get(Tenant, b)
        assert tenant_b is not None
        tenant_b.active = False
    key = _key()

    async def rows_for_period() -> list[uuid.UUID | None]:
        async with database.session(Scope.system("test read")) as session:
            rows = (
                await session.execute(
                    select(OutboxMessage.tenant_id, OutboxMessage.payload, OutboxMessage.status).where(
                        OutboxMessage.topic == READINESS_TOPIC, OutboxMessage.tenant_id.in_([a, b, c])
                    )
                )
            ).all()
        assert all(status == outbox.PENDING for tid, payload, status in rows if payload.get("period") == key)
        return sorted((tid for tid, payload, _s in rows if payload.get("period") == key), key=str)

    assert await run_claimed(database, "tenants.nightly_readiness", key) is True
    assert await rows_for_period() == sorted([a, c], key=str)  # one each; b is inactive
    assert await run_claimed(database, "tenants.nightly_readiness", key) is False
    assert await rows_for_period() == sorted([a, c], key=str)
