"""The scheduler opens exactly one self-check per tenant per period, even when run twice or late."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, select

from portal.core import clock
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.selfcheck import SelfCheck
from portal.models.tenants import Tenant
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.monthly.jobs import open_periods
from tests.fixtures.factories import World
from worker.scheduler import run_claimed


async def _count(database: Database, world: World, period: str) -> int:
    ids = [t.id for t in world.tenants.values()]
    async with database.session(Scope.system("test")) as s:
        return int(
            (
                await s.execute(
                    select(func.count())
                    .select_from(SelfCheck)
                    .where(SelfCheck.tenant_id.in_(ids), SelfCheck.period == period)
                )
            ).scalar_one()
        )


async def test_open_periods_twice_and_late_creates_one_each(database: Database, world: World) -> None:
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
    async with database.session(Scope.system("test")) as s:
        await open_periods(s, "2031-02")
    async with database.session(Scope.system("test")) as s:
        await open_periods(s, "2031-02")  # twice
    # Run late (March) after a missed February: February is caught up, never duplicated.
    async with database.session(Scope.system("test")) as s:
        await open_periods(s, "2031-03")
    assert await _count(database, world, "2031-01") == 3  # the catch-up of the first run
    assert await _count(database, world, "2031-02") == 3
    assert await _count(database, world, "2031-03") == 3


async def test_two_schedulers_claim_the_period_once(database: Database, world: World) -> None:
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
    key = "2033-07"  # a period no other test runs (each test session has its own database)
    other = Database(database.settings)
    try:
        results = await asyncio.gather(
            run_claimed(database, "selfcheck.open_periods", key),
            run_claimed(other, "selfcheck.open_periods", key),
        )
    finally:
        await other.dispose()
    assert sorted(results) == [False, True]


async def test_no_period_before_the_tenant_joined_is_due(database: Database, world: World) -> None:
    """A unit registered in the middle of a month has that month's self-check, not last month's (it would
    be overdue, and on the accountability ledger, on its first day)."""
    tenant = world.tenants["a"]
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
        row = await s.get(Tenant, tenant.id)
        assert row is not None
        row.created_at = datetime(2032, 5, 17, 9, 30, tzinfo=clock.zone())
    async with database.session(Scope.system("test")) as s:
        await open_periods(s, "2032-05")
    async with database.session(Scope.system("test")) as s:
        await open_periods(s, "2032-06")
    async with database.session(Scope.system("test")) as s:
        periods = set(
            (await s.execute(select(SelfCheck.period).where(SelfCheck.tenant_id == tenant.id))).scalars()
        )
    assert {"2032-05", "2032-06"} <= periods and "2032-04" not in periods
