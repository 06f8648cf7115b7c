"""The production shape end to end: a membership change commits an outbox row, the row goes through the
real Redis or RabbitMQ broker to a real dramatiq worker, and the worker updates the tenant."""

from __future__ import annotations

import uuid

import pika.exceptions
import pytest
import redis.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from portal.core import outbox
from portal.core.db import Database
from portal.core.outbox import OutboxMessage
from portal.core.tenancy import Scope
from portal.models.tenants import MemberRole, Tenant
from portal.tenants import services as ts
from portal.tenants.services import READINESS_TOPIC
from tests.fixtures.brokers import LiveWorker, eventually, require_broker
from tests.fixtures.factories import World
from worker.broker import make_broker, ping


class _Abort(Exception):
    pass


async def _readiness_rows(db: Database, tenant_id: uuid.UUID) -> set[uuid.UUID]:
    async with db.session(Scope.system("test read")) as session:
        rows = await session.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.tenant_id == tenant_id, OutboxMessage.topic == READINESS_TOPIC
            )
        )
    return set(rows.scalars())


async def _load(db: Database, message_id: uuid.UUID) -> OutboxMessage:
    async with db.session(Scope.system("test read")) as session:
        msg = await session.get(OutboxMessage, message_id)
    assert msg is not None
    return msg


async def _readiness(db: Database, tenant_id: uuid.UUID) -> str:
    async with db.session(Scope.system("test read")) as session:
        tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant.readiness


async def test_membership_change_reaches_the_worker_through_the_real_broker(
    database: Database, world: World, live_worker: LiveWorker
) -> None:
    tenant_id = world.tenants["c"].id  # only a manager so far: not "ready"
    assert await _readiness(database, tenant_id) != "ready"
    tag = uuid.uuid4().hex[:10]

    # A transaction that rolls back sends nothing: its row never existed.
    rolled_back: set[uuid.UUID] = set()
    with pytest.raises(_Abort):
        async with database.session(Scope.system("test add member")) as session:
            tenant = await session.get(Tenant, tenant_id)
            assert tenant is not None
            user = await ts.create_user(session, login=f"gone.{tag}", display_name="回滚")
            await ts.add_member(session, tenant, user, MemberRole.RESPONSIBLE)
            rolled_back = set(
                (
                    await session.execute(
                        select(OutboxMessage.id).where(
                            OutboxMessage.tenant_id == tenant_id, OutboxMessage.status == outbox.PENDING
                        )
                    )
                ).scalars()
            )
            raise _Abort

    # The real change: the row commits with the membership, then goes to the broker.
    before = await _readiness_rows(database, tenant_id)
    async with database.session(Scope.system("test add member")) as session:
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        user = await ts.create_user(session, login=f"resp.{tag}", display_name="负责人")
        await ts.add_member(session, tenant, user, MemberRole.RESPONSIBLE)
    (msg_id,) = await _readiness_rows(database, tenant_id) - before

    async def processed() -> bool:
        return (await _load(database, msg_id)).status == outbox.DONE

    await eventually(processed, what=f"the outbox row to be processed by the {live_worker.kind} worker")
    assert await _readiness(database, tenant_id) == "ready"
    row = await _load(database, msg_id)
    assert row.attempts == 0 and row.last_error is None and row.processed_at is not None
    # It went through the broker, once, and the worker ran it without error.
    deliveries = live_worker.recorder.deliveries("process_outbox", str(msg_id))
    assert [d.error for d in deliveries] == [None]
    assert rolled_back - before  # the aborted transaction did emit a row, which vanished with it...
    for gone in rolled_back - before:  # ...and never reached the broker
        assert live_worker.recorder.deliveries("process_outbox", str(gone)) == []


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_ping_answers_for_a_real_broker(kind: str) -> None:
    broker = make_broker(require_broker(kind), namespace=f"portal-test-{uuid.uuid4().hex[:8]}")
    try:
        assert isinstance(broker, RedisBroker if kind == "redis" else RabbitmqBroker)
        ping(broker)
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("redis://127.0.0.1:1/0", redis.exceptions.ConnectionError),
        ("amqp://guest:guest@127.0.0.1:1/%2F", pika.exceptions.AMQPConnectionError),
    ],
)
def test_ping_raises_when_nothing_listens(url: str, error: type[Exception]) -> None:
    broker = make_broker(url)
    try:
        with pytest.raises(error):
            ping(broker)
    finally:
        broker.close()


def test_make_broker_shapes() -> None:
    stub = make_broker("inprocess://")
    assert isinstance(stub, StubBroker)
    ping(stub)
    rabbit = make_broker("amqp://guest:guest@127.0.0.1:5672/%2F")
    assert isinstance(rabbit, RabbitmqBroker) and rabbit.confirm_delivery  # send returns once stored
    with pytest.raises(ValueError, match="unsupported"):
        make_broker("kafka://127.0.0.1:9092")
