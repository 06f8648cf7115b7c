"""The outbox keeps its promises with real parts: a lost message is swept and processed once, a duplicate
delivery is skipped, a failing handler is retried and then marked failed (DESIGN section 4).

Two test-only topics are registered here. Their handler creates a ``User`` whose login comes from the
payload: the login is unique, so a second run of the handler could not commit, and "exactly one user"
together with the ``skipped`` answer proves the work happened once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import outbox
from portal.core.db import Database
from portal.core.outbox import MAX_ATTEMPTS, OutboxMessage
from portal.core.tenancy import Scope
from portal.models.identity import User
from portal.models.tenants import MemberRole, Tenant
from portal.tenants import services as ts
from portal.tenants.services import READINESS_TOPIC
from tests.fixtures.brokers import LiveWorker, eventually
from tests.fixtures.factories import World

ONCE_TOPIC = "test.outbox.once"
FAIL_TOPIC = "test.outbox.fail"


async def _create_user_once(session: AsyncSession, payload: dict[str, Any]) -> None:
    await ts.create_user(session, login=payload["login"], display_name="outbox once")


async def _write_then_fail(session: AsyncSession, payload: dict[str, Any]) -> None:
    await ts.create_user(session, login=payload["login"], display_name="must never commit")
    raise RuntimeError(f"boom {payload['login']}")


# The test topics, registered as portal.registry registers the real ones.
outbox.register(ONCE_TOPIC, _create_user_once)
outbox.register(FAIL_TOPIC, _write_then_fail)


@pytest.fixture
def no_dispatcher() -> Iterator[None]:
    """No broker in this process: committed rows stay pending until someone processes them."""
    outbox.set_dispatcher(None)
    yield
    outbox.set_dispatcher(None)


async def emit_committed(db: Database, topic: str, payload: dict[str, Any]) -> uuid.UUID:
    async with db.session(Scope.system("test emit")) as session:
        msg = await outbox.emit(session, topic, payload)
    return msg.id


async def load(db: Database, message_id: uuid.UUID) -> OutboxMessage:
    async with db.session(Scope.system("test read")) as session:
        msg = await session.get(OutboxMessage, message_id)
    assert msg is not None
    return msg


async def users_with_login(db: Database, login: str) -> int:
    async with db.session(Scope.system("test read")) as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(User).where(User.login == login))
            ).scalar_one()
        )


async def readiness_of(db: Database, tenant_id: uuid.UUID) -> str:
    async with db.session(Scope.system("test read")) as session:
        tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant.readiness


async def readiness_rows(db: Database, tenant_id: uuid.UUID) -> set[uuid.UUID]:
    async with db.session(Scope.system("test read")) as session:
        rows = await session.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.tenant_id == tenant_id, OutboxMessage.topic == READINESS_TOPIC
            )
        )
    return set(rows.scalars())


async def add_responsible(db: Database, tenant_id: uuid.UUID) -> uuid.UUID:
    """A real membership change through the service; returns the outbox row it committed."""
    before = await readiness_rows(db, tenant_id)
    async with db.session(Scope.system("test add member")) as session:
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        user = await ts.create_user(session, login=f"resp.{uuid.uuid4().hex[:10]}", display_name="负责人")
        await ts.add_member(session, tenant, user, MemberRole.RESPONSIBLE)
    (new_row,) = await readiness_rows(db, tenant_id) - before
    return new_row


# -- a lost message ------------------------------------------------------------------------------------


async def test_lost_message_is_swept_and_processed_once(
    database: Database, world: World, live_worker: LiveWorker
) -> None:
    from worker.actors import send_outbox

    tenant_id = world.tenants["c"].id  # a manager only: not "ready" (never computed, or "no_responsible")
    assert await readiness_of(database, tenant_id) != "ready"

    # The web process committed the change but died before handing the row to the broker.
    outbox.set_dispatcher(None)
    msg_id = await add_responsible(database, tenant_id)
    # The worker is running and busy: a message sent after ours goes through, and ours is still pending.
    from worker.actors import process_outbox

    probe = await emit_committed(database, ONCE_TOPIC, {"login": f"probe.{uuid.uuid4().hex[:10]}"})
    process_outbox.send(str(probe))

    async def probe_done() -> bool:
        return (await load(database, probe)).status == outbox.DONE

    await eventually(probe_done, what="a later message processed by the running worker")
    assert (await load(database, msg_id)).status == outbox.PENDING
    assert await readiness_of(database, tenant_id) != "ready"
    assert live_worker.recorder.deliveries("process_outbox", str(msg_id)) == []

    # The sweeper finds the stale row and re-sends it through the real broker. (Other tests' pending
    # rows in this session's database are swept too; only ours is sent, to keep them untouched.)
    def resend(message_id: uuid.UUID) -> None:
        if message_id == msg_id:
            send_outbox(message_id)

    swept = await outbox.sweep(database, stale_after=timedelta(0), send=resend, limit=100_000)
    assert msg_id in swept

    async def done() -> bool:
        return (await load(database, msg_id)).status == outbox.DONE

    await eventually(done, what="the swept row to be processed")
    assert await readiness_of(database, tenant_id) == "ready"
    row = await load(database, msg_id)
    assert row.attempts == 0 and row.last_error is None
    assert row.dispatched_at is not None and row.processed_at is not None
    deliveries = live_worker.recorder.deliveries("process_outbox", str(msg_id))
    assert [d.error for d in deliveries] == [None]
    # A done row is never sent again.
    again = await outbox.sweep(database, stale_after=timedelta(0), send=resend, limit=100_000)
    assert msg_id not in again


# -- duplicate deliveries ------------------------------------------------------------------------------


async def test_duplicate_delivery_through_the_broker_runs_the_handler_once(
    database: Database, live_worker: LiveWorker
) -> None:
    from worker.actors import process_outbox

    login = f"once.{uuid.uuid4().hex[:10]}"
    msg_id = await emit_committed(database, ONCE_TOPIC, {"login": login})  # dispatched after the commit
    process_outbox.send(str(msg_id))  # ...and delivered a second time (at-least-once brokers do this)

    async def both_delivered() -> bool:
        return len(live_worker.recorder.deliveries("process_outbox", str(msg_id))) == 2

    await eventually(both_delivered, what="two deliveries of the same message")
    # Neither delivery failed: had the handler run twice, the unique login would have raised.
    assert [d.error for d in live_worker.recorder.deliveries("process_outbox", str(msg_id))] == [None, None]
    assert await users_with_login(database, login) == 1
    row = await load(database, msg_id)
    assert (row.status, row.attempts, row.last_error) == (outbox.DONE, 0, None)


async def test_concurrent_duplicates_one_done_one_skipped(database: Database, no_dispatcher: None) -> None:
    login = f"once.{uuid.uuid4().hex[:10]}"
    msg_id = await emit_committed(database, ONCE_TOPIC, {"login": login})
    assert (await load(database, msg_id)).status == outbox.PENDING
    # Two worker processes, each with its own engine, get the same message at the same time.
    first, second = Database(database.settings), Database(database.settings)
    try:
        results = await asyncio.gather(outbox.process(first, msg_id), outbox.process(second, msg_id))
    finally:
        await first.dispose()
        await second.dispose()
    assert sorted(results) == ["done", "skipped"]
    assert await users_with_login(database, login) == 1
    # A late third delivery changes nothing either.
    assert await outbox.process(database, msg_id) == "skipped"
    assert await users_with_login(database, login) == 1
    row = await load(database, msg_id)
    assert (row.status, row.attempts, row.last_error) == (outbox.DONE, 0, None)


async def test_unknown_message_is_skipped(database: Database) -> None:
    assert await outbox.process(database, uuid.uuid4()) == "skipped"


# -- failures ------------------------------------------------------------------------------------------


async def test_failing_handler_is_retried_then_marked_failed(database: Database, no_dispatcher: None) -> None:
    login = f"fail.{uuid.uuid4().hex[:10]}"
    msg_id = await emit_committed(database, FAIL_TOPIC, {"login": login})

    with pytest.raises(RuntimeError, match="boom"):
        await outbox.process(database, msg_id)
    row = await load(database, msg_id)
    assert (row.status, row.attempts) == (outbox.PENDING, 1)
    assert row.last_error is not None and f"boom {login}" in row.last_error
    assert row.processed_at is None
    # The handler's own write was rolled back with the claim: nothing half-done is left behind.
    assert await users_with_login(database, login) == 0
    # Still pending, so the sweeper would re-send it.
    sent: list[uuid.UUID] = []
    await outbox.sweep(database, stale_after=timedelta(0), send=sent.append, limit=100_000)
    assert msg_id in sent

    for attempt in range(2, MAX_ATTEMPTS + 1):
        with pytest.raises(RuntimeError, match="boom"):
            await outbox.process(database, msg_id)
        row = await load(database, msg_id)
        assert row.attempts == attempt
        assert row.status == (outbox.FAILED if attempt == MAX_ATTEMPTS else outbox.PENDING)

    # Failed for good: further deliveries and sweeps leave it alone, and it never ran to completion.
    assert await outbox.process(database, msg_id) == "skipped"
    assert (await load(database, msg_id)).attempts == MAX_ATTEMPTS
    sent.clear()
    await outbox.sweep(database, stale_after=timedelta(0), send=sent.append, limit=100_000)
    assert msg_id not in sent
    assert await users_with_login(database, login) == 0


async def test_concurrent_failures_count_every_attempt(database: Database, no_dispatcher: None) -> None:
    login = f"fail.{uuid.uuid4().hex[:10]}"
    msg_id = await emit_committed(database, FAIL_TOPIC, {"login": login})
    dbs = [Database(database.settings) for _ in range(3)]
    try:
        results = await asyncio.gather(*(outbox.process(db, msg_id) for db in dbs), return_exceptions=True)
    finally:
        for db in dbs:
            await db.dispose()
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert (await load(database, msg_id)).attempts == 3
    # Leave no pending test row behind for a later sweep (e.g. the embedded worker's at start-up).
    for _ in range(MAX_ATTEMPTS - 3):
        with pytest.raises(RuntimeError):
            await outbox.process(database, msg_id)
    assert (await load(database, msg_id)).status == outbox.FAILED


async def test_emit_refuses_a_topic_without_handler(database: Database) -> None:
    with pytest.raises(LookupError):
        async with database.session(Scope.system("test")) as session:
            await outbox.emit(session, "test.outbox.nobody", {})
