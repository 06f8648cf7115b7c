"""Wire the broker, the actors and the outbox dispatcher for one process."""

from __future__ import annotations

import dramatiq

from portal import registry
from portal.config import Settings
from portal.core import outbox
from worker import lifecycle
from worker.broker import make_broker


def setup(settings: Settings) -> dramatiq.Broker:
    """Set the global broker (dramatiq binds actors to it at import) and route outbox rows to it."""
    broker = make_broker(settings.broker_url)
    dramatiq.set_broker(broker)
    lifecycle.configure(settings)
    import worker.actors as actors

    for actor in (actors.process_outbox, actors.sweep_outbox, actors.run_periodic):
        actor.broker = broker
        broker.declare_actor(actor)
    registry.install()
    outbox.set_dispatcher(actors.send_outbox)
    return broker
