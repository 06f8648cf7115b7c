"""Server-side sessions in the database: the embedded shape (Redis when ``PORTAL_REDIS_URL`` is set).

A Litestar :class:`~litestar.stores.base.Store` over the ``session_store`` table. Every call is its own
short transaction on the engine, never the request's: plain Core statements on a table that holds no
tenant rows, so no tenancy scope and none of its per-transaction settings. The session middleware reads
before the handler and writes after the request's transaction has committed, so on SQLite, with its
single writer, the two never wait on each other. An expired row reads as missing;
:meth:`DatabaseStore.delete_expired` removes such rows (the store also calls it now and then on writes,
so a table nobody sweeps does not grow forever).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from litestar.stores.base import Store
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.core.db import Database
from portal.models.identity import SessionRecord

__all__ = ["DatabaseStore"]


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(value: int | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class DatabaseStore(Store):
    """A key/value store over :class:`~portal.models.identity.SessionRecord`."""

    __slots__ = ("_db", "_last_purge", "purge_every_s")

    def __init__(self, db: Database, *, purge_every_s: float = 600.0) -> None:
        self._db = db
        self.purge_every_s = purge_every_s
        self._last_purge = time.monotonic()

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        data = value.encode() if isinstance(value, str) else value
        seconds = _seconds(expires_in)
        now = _now()
        expires_at = now + timedelta(seconds=seconds) if seconds else None
        async with self._db.engine.begin() as conn:
            insert = pg_insert if self._db.engine.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(SessionRecord).values(key=key, value=data, expires_at=expires_at)
            stmt = stmt.on_conflict_do_update(
                index_elements=[SessionRecord.key],
                set_={"value": data, "expires_at": expires_at, "updated_at": now},
            )
            await conn.execute(stmt)
        if time.monotonic() - self._last_purge >= self.purge_every_s:
            self._last_purge = time.monotonic()
            await self.delete_expired()

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        now = _now()
        async with self._db.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(SessionRecord.value, SessionRecord.expires_at).where(SessionRecord.key == key)
                )
            ).first()
            if row is None or (row.expires_at is not None and row.expires_at <= now):
                return None
            seconds = _seconds(renew_for)
            if seconds and row.expires_at is not None:
                await conn.execute(
                    update(SessionRecord)
                    .where(SessionRecord.key == key)
                    .values(expires_at=now + timedelta(seconds=seconds), updated_at=now)
                )
            return bytes(row.value)

    async def delete(self, key: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(delete(SessionRecord).where(SessionRecord.key == key))

    async def delete_all(self) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(delete(SessionRecord))

    async def exists(self, key: str) -> bool:
        async with self._db.engine.begin() as conn:
            expires_at = (
                await conn.execute(select(SessionRecord.expires_at).where(SessionRecord.key == key))
            ).first()
        return expires_at is not None and (expires_at[0] is None or expires_at[0] > _now())

    async def expires_in(self, key: str) -> int | None:
        """Seconds until ``key`` expires; ``None`` if it is missing, expired, or never expires."""
        async with self._db.engine.begin() as conn:
            expires_at = (
                await conn.execute(select(SessionRecord.expires_at).where(SessionRecord.key == key))
            ).scalar_one_or_none()
        if expires_at is None:
            return None
        left = int((expires_at - _now()).total_seconds())
        return left if left > 0 else None

    async def delete_expired(self) -> int:
        """Remove every expired row; returns how many went."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(delete(SessionRecord).where(SessionRecord.expires_at <= _now()))
            return int(getattr(result, "rowcount", 0) or 0)

    async def count(self) -> int:
        """Rows in the table, expired or not (for tests and ``portal check``-like diagnostics)."""
        async with self._db.engine.begin() as conn:
            return int((await conn.execute(select(func.count()).select_from(SessionRecord))).scalar_one())
