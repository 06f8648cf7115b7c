"""Database engine, sessions and the declarative base.

advanced-alchemy gives us the UUIDv7 primary keys, UTC audit columns and constraint naming conventions
(so Alembic migrations are stable on SQLite and PostgreSQL); we add the tenancy scope on top
(:mod:`portal.core.tenancy`).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from sqlalchemy import Enum, Select, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from portal.config import Settings
from portal.core import tenancy

Base = UUIDv7AuditBase
metadata = orm_registry.metadata

__all__ = ["Base", "Database", "metadata"]

#: A SELECT of any columns: what the ``functools.cache`` builders of hot statements return. Those statements
#: are built once, with ``bindparam`` placeholders filled in at execution: building a statement costs more
#: CPU than running it through SQLAlchemy's compiled cache, and the tenancy check remembers them
#: (:mod:`portal.core.tenancy`).
AnySelect = Select[*tuple[Any, ...]]


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    """An enum column stored as its values in a plain VARCHAR without CHECK: adding a value later (a new
    owner type, a new role) is not a migration on PostgreSQL."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


SQLITE_BUSY_TIMEOUT_S = 30


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web process read while the in-process worker writes; foreign keys are off by default.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # As long as the driver's own timeout (connect_args below): the pragma replaces it, and a writer that
    # waits less fails under load (two schedulers claiming one period while a month is being opened).
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, *, pool_size: int = 10, poolclass: Any = None) -> AsyncEngine:
    kwargs: dict[str, Any] = {"pool_pre_ping": False}
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    if poolclass is not None:
        kwargs = {
            "poolclass": poolclass,
            **({"connect_args": kwargs["connect_args"]} if "connect_args" in kwargs else {}),
        }
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """One engine and session factory per process (web, worker, CLI)."""

    def __init__(self, settings: Settings, *, poolclass: Any = None) -> None:
        self.settings = settings
        self.engine = make_engine(
            settings.database_url, pool_size=settings.database_pool_size, poolclass=poolclass
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)

    @asynccontextmanager
    async def session(self, scope: tenancy.Scope | None) -> AsyncIterator[AsyncSession]:
        """A session bound to ``scope``; commits on success, rolls back on error."""
        async with self.sessionmaker() as session:
            tenancy.bind_scope(session, scope)
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()


__all__ += ["NullPool", "make_engine", "str_enum"]
