"""The transactional outbox: the database is the source of truth for background work (DESIGN section 4).

A service calls :func:`emit` inside its transaction; the row commits with the change that caused it. Only
after the commit does the dispatcher hand the row id to the broker ("go look at row X"). The actor
(:func:`process`) marks the row done *in the same transaction* as the handler's work, guarded by
``status = 'pending'``, so a second delivery of the same message changes nothing, a failed handler leaves
the row pending for a retry, and a killed worker loses nothing: the sweeper re-sends pending rows.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, ForeignKey, Integer, String, Text, case, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.core.db import Base, Database
from portal.core.tenancy import Scope

log = structlog.get_logger("portal.outbox")

PENDING, DONE, FAILED = "pending", "done", "failed"
MAX_ATTEMPTS = 8

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
_handlers: dict[str, Handler] = {}
_on_failed: dict[str, Handler] = {}
_dispatcher: Callable[[uuid.UUID], None] | None = None


class OutboxMessage(Base):
    """One unit of background work. Read only by jobs, under the system scope."""

    __tablename__ = "outbox_message"
    topic: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


def register(topic: str, fn: Handler, *, on_failed: Handler | None = None) -> None:
    """Name the async function that does the work of ``topic`` (it must be idempotent), and, if given,
    the one that records what a message that failed for good leaves behind (``on_failed``: so that no
    one waits for it for ever). Called by :mod:`portal.registry` only, never on import."""
    _handlers[topic] = fn
    if on_failed is not None:
        _on_failed[topic] = on_failed


def set_dispatcher(fn: Callable[[uuid.UUID], None] | None) -> None:
    """Called by the worker set-up: how a committed row id reaches the broker."""
    global _dispatcher
    _dispatcher = fn


_NEW_KEY = "portal.outbox.new"


async def emit(
    session: AsyncSession, topic: str, payload: dict[str, Any], tenant_id: uuid.UUID | None = None
) -> OutboxMessage:
    if topic not in _handlers:
        raise LookupError(f"no outbox handler for {topic!r}")
    msg = OutboxMessage(topic=topic, payload=payload, tenant_id=tenant_id, status=PENDING)
    session.add(msg)
    await session.flush()
    session.sync_session.info.setdefault(_NEW_KEY, []).append(msg.id)
    return msg


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    ids = session.info.pop(_NEW_KEY, None)
    if not ids or _dispatcher is None:
        return  # no broker in this process: the sweeper will send them
    for msg_id in ids:
        try:
            _dispatcher(msg_id)
        except Exception:  # a broker hiccup must not fail a committed request; the sweeper resends
            log.warning("outbox_dispatch_failed", message_id=str(msg_id), exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_NEW_KEY, None)


async def process(db: Database, message_id: uuid.UUID) -> str:
    """Run the handler of one message exactly once. Returns ``done``, ``skipped`` or raises."""
    try:
        async with db.session(Scope.system("outbox")) as session:
            claimed = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.status == PENDING)
                .values(status=DONE, processed_at=datetime.now(UTC))
                .returning(OutboxMessage.topic, OutboxMessage.payload)
            )
            row = claimed.first()
            if row is None:
                return "skipped"  # already done (a duplicate delivery), failed for good, or unknown
            topic, payload = row
            await _handlers[topic](session, payload)
        log.debug("outbox_done", message_id=str(message_id), topic=topic)
        return "done"
    except Exception as exc:
        await _record_failure(db, message_id, exc)
        raise


async def _record_failure(db: Database, message_id: uuid.UUID, exc: Exception) -> None:
    error = "".join(traceback.format_exception_only(exc))[:4000]
    attempts = OutboxMessage.attempts + 1
    async with db.session(Scope.system("outbox failure")) as session:
        # One atomic UPDATE, not read-modify-write: when duplicate deliveries of one message fail at the
        # same time, every failure counts (a lost update would retry a poison message past MAX_ATTEMPTS).
        row = (
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.status == PENDING)
                .values(
                    attempts=attempts,
                    last_error=error,
                    status=case((attempts >= MAX_ATTEMPTS, FAILED), else_=PENDING),
                )
                .returning(
                    OutboxMessage.topic, OutboxMessage.payload, OutboxMessage.attempts, OutboxMessage.status
                )
                .execution_options(synchronize_session=False)
            )
        ).first()
    if row is not None and row.status == FAILED:
        log.error("outbox_failed", message_id=str(message_id), topic=row.topic, attempts=row.attempts)
        given_up = _on_failed.get(row.topic)
        if given_up is not None:
            async with db.session(Scope.system("outbox: a message failed for good")) as session:
                await given_up(session, row.payload)


async def sweep(
    db: Database, *, stale_after: timedelta, send: Callable[[uuid.UUID], None], limit: int = 500
) -> list[uuid.UUID]:
    """Re-send rows still pending after ``stale_after`` (lost message, dead worker, broker down)."""
    cutoff = datetime.now(UTC) - stale_after
    async with db.session(Scope.system("outbox sweeper")) as session:
        rows = (
            (
                await session.execute(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.status == PENDING, OutboxMessage.created_at < cutoff)
                    .where((OutboxMessage.dispatched_at.is_(None)) | (OutboxMessage.dispatched_at < cutoff))
                    .order_by(OutboxMessage.created_at)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        if rows:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(rows))
                .values(dispatched_at=datetime.now(UTC))
            )
    for msg_id in rows:
        send(msg_id)
    if rows:
        log.info("outbox_swept", count=len(rows))
    return list(rows)
