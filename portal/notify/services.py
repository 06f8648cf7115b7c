"""The inbox and its e-mail copies. Notifications belong to a person, not a tenant: every query here is
keyed on the person's id, and another person's notification is simply not found (the route answers 404)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import i18n, outbox
from portal.models.identity import User
from portal.models.notify import Notification
from portal.notify.senders import current_sender

log = structlog.get_logger("portal.notify")

DELIVER_TOPIC = "notify.deliver"
PAGE_SIZE = 20


async def notify_in_own_language(
    session: AsyncSession,
    user_ids: Iterable[uuid.UUID],
    kind: str,
    message: Callable[[], tuple[str, str]],
    link: str,
    dedup_key: str,
    *,
    tenant_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """:func:`notify` with ``message()`` (title, body) made in each active person's own language."""
    users = (
        await session.execute(
            select(User.id, User.locale).where(User.id.in_(list(user_ids)), User.active.is_(True))
        )
    ).all()
    by_locale: dict[str | None, list[uuid.UUID]] = {}
    for user_id, locale in users:
        by_locale.setdefault(locale, []).append(user_id)
    created: list[uuid.UUID] = []
    for locale, ids in sorted(by_locale.items(), key=lambda kv: kv[0] or ""):
        with i18n.using_locale(locale):
            title, body = message()
        created += await notify(session, ids, kind, title, body, link, dedup_key, tenant_id=tenant_id)
    return created


async def notify(
    session: AsyncSession,
    user_ids: Iterable[uuid.UUID],
    kind: str,
    title: str,
    body: str,
    link: str,
    dedup_key: str,
    *,
    tenant_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Put one message in each person's inbox, unless that person already has one with ``dedup_key``, and
    emit one outbox row per new message for its e-mail copy. Returns the ids of the new messages."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    created: list[uuid.UUID] = []
    for user_id in dict.fromkeys(user_ids):
        stmt = (
            insert(Notification)
            .values(
                user_id=user_id,
                tenant_id=tenant_id,
                kind=kind[:40],
                title=title[:200],
                body=body,
                link=link[:300],
                dedup_key=dedup_key[:120],
            )
            .on_conflict_do_nothing(index_elements=["user_id", "dedup_key"])
            .returning(Notification.id)
        )
        new_id = (await session.execute(stmt)).scalar_one_or_none()
        if new_id is None:
            continue  # already notified about this (a job that ran twice)
        created.append(new_id)
        await outbox.emit(session, DELIVER_TOPIC, {"notification_id": str(new_id)}, tenant_id=tenant_id)
    return created


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    """How many of the person's messages are unread (for the header badge)."""
    stmt = select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())


async def inbox(
    session: AsyncSession, user_id: uuid.UUID, *, page: int = 1, per_page: int = PAGE_SIZE
) -> tuple[Sequence[Notification], int]:
    """One page of the person's messages, newest first, and how many there are in all."""
    total = int(
        (await session.execute(select(func.count()).where(Notification.user_id == user_id))).scalar_one()
    )
    rows = (
        (
            await session.execute(
                select(Notification)
                .where(Notification.user_id == user_id)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .offset((max(page, 1) - 1) * per_page)
                .limit(per_page)
            )
        )
        .scalars()
        .all()
    )
    return rows, total


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID, *, now: datetime | None = None
) -> Notification | None:
    """Mark one of the person's messages read; ``None`` when it is not theirs (or does not exist)."""
    row = (
        await session.execute(
            select(Notification).where(Notification.id == notification_id, Notification.user_id == user_id)
        )
    ).scalar_one_or_none()
    if row is not None and row.read_at is None:
        row.read_at = now or datetime.now(UTC)
        await session.flush()
    return row


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID, *, now: datetime | None = None) -> int:
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now or datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def email_text(note: Notification, base_url: str) -> str:
    link = f"\n\n{base_url.rstrip('/')}{note.link}" if note.link else ""
    return f"{note.body}{link}"


async def deliver(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Send the e-mail copy of one notification when its person has an address. At least once: a failed
    send raises, and the outbox retries the row."""
    from portal.config import get_settings

    note = await session.get(Notification, uuid.UUID(payload["notification_id"]))
    if note is None:
        return
    user = await session.get(User, note.user_id)
    if user is None or not user.active or not user.email:
        log.info("notification_not_emailed", notification_id=str(note.id), reason="no address")
        return
    body = email_text(note, get_settings().base_url)
    await asyncio.to_thread(current_sender().send, user.email, note.title, body)
