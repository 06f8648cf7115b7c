"""Claims for periodic jobs: safe when several processes run the same scheduler.

Each run of a periodic job has a period key (``2026-11``, ``2026-11-23T10:05``...). The first process to
insert the ``(job, period_key)`` row runs it; every other process sees the unique key and skips.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from portal.core import clock
from portal.core.db import Base


class ScheduledRun(Base):
    __tablename__ = "scheduled_run"
    job: Mapped[str] = mapped_column(String(80))
    period_key: Mapped[str] = mapped_column(String(40))
    __table_args__ = (UniqueConstraint("job", "period_key"),)


async def claim_run(session: AsyncSession, job: str, period_key: str) -> bool:
    """True for exactly one caller per (job, period_key), across processes."""
    # The bind the session really uses (``session.bind`` is None for a session configured with ``binds=``,
    # and guessing "sqlite" then would build a statement PostgreSQL cannot compile).
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(ScheduledRun)
        .values(job=job, period_key=period_key)
        .on_conflict_do_nothing(index_elements=["job", "period_key"])
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- the registry of periodic jobs (domains register; the worker's scheduler enqueues them) -------------

Job = Callable[[AsyncSession, str], Awaitable[None]]
JOBS: dict[str, tuple[Callable[[datetime], str], Job]] = {}


def register(name: str, period_key: Callable[[datetime], str], fn: Job) -> None:
    """Run ``fn(session, period_key)`` once per period (the key function names the period). Called by
    :mod:`portal.registry` only."""
    JOBS[name] = (period_key, fn)


def daily_key(now: datetime) -> str:
    return now.astimezone(clock.zone()).strftime("%Y-%m-%d")


def monthly_key(now: datetime) -> str:
    return now.astimezone(clock.zone()).strftime("%Y-%m")
