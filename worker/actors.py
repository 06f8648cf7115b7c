"""Actors: a few lines each that call a domain service. Import after :func:`worker.setup` set the broker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import dramatiq

from portal.core import outbox
from worker import lifecycle

# At-least-once delivery: every actor is idempotent. Explicit limits so a poison message ends up failed
# (and visible in the outbox table) instead of cycling forever.
OUTBOX_OPTS: dict[str, Any] = {
    "max_retries": 5,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "max_age": 24 * 3600 * 1000,
}


@dramatiq.actor(queue_name="outbox", **OUTBOX_OPTS)
async def process_outbox(message_id: str) -> None:
    await outbox.process(lifecycle.database(), uuid.UUID(message_id))


@dramatiq.actor(queue_name="periodic", max_retries=0, max_age=5 * 60 * 1000)
async def sweep_outbox() -> None:
    db = lifecycle.database()
    await outbox.sweep(db, stale_after=timedelta(seconds=db.settings.outbox_stale_after_s), send=send_outbox)


@dramatiq.actor(queue_name="periodic", max_retries=3, max_age=6 * 3600 * 1000)
async def run_periodic(job: str, period_key: str) -> None:
    from worker.scheduler import run_claimed

    await run_claimed(lifecycle.database(), job, period_key)


def send_outbox(message_id: uuid.UUID) -> None:
    process_outbox.send(str(message_id))
