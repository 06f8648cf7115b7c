"""The dramatiq broker, chosen by ``PORTAL_BROKER_URL`` alone.

``inprocess://`` is dramatiq's in-memory broker with worker threads inside ``portal serve`` (the embedded
shape); ``redis://`` and ``amqp://`` are the production shape with ``portal worker`` processes. RabbitMQ
runs with publisher confirms, so ``send`` returns only once the broker has the message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from worker.lifecycle import DatabaseLifecycle


def make_broker(url: str, *, namespace: str = "portal") -> dramatiq.Broker:
    scheme = urlsplit(url).scheme
    broker: dramatiq.Broker
    if scheme == "inprocess":
        broker = StubBroker()
    elif scheme in {"redis", "rediss"}:
        broker = RedisBroker(url=url, namespace=namespace)
    elif scheme in {"amqp", "amqps"}:
        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    else:
        raise ValueError(f"unsupported broker URL scheme {scheme!r}")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(DatabaseLifecycle())
    return broker


def ping(broker: Any) -> None:
    """Raise if the broker does not answer (used by /health and ``portal check``)."""
    if isinstance(broker, StubBroker):
        return
    if isinstance(broker, RedisBroker):
        broker.client.ping()
        return
    if isinstance(broker, RabbitmqBroker):
        import pika

        connection = pika.BlockingConnection(
            broker.parameters[0] if isinstance(broker.parameters, list) else broker.parameters
        )
        connection.close()
        return
    raise TypeError(f"unknown broker {type(broker).__name__}")
