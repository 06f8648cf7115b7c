"""Who is acting in this context: the person of a request, or a job. The request middleware and the
principal set it; the audit log (and the logs) read it. A context variable, so every request and every
job has its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who acts: a person (``user_id``) or a job (``label`` like ``system:outbox``)."""

    label: str
    user_id: uuid.UUID | None = None
    ip: str = ""
    request_id: str = ""


SYSTEM_ACTOR = Actor(label="system")
_actor: ContextVar[Actor] = ContextVar("portal_audit_actor", default=SYSTEM_ACTOR)


def set_actor(actor: Actor) -> None:
    _actor.set(actor)


def current_actor() -> Actor:
    return _actor.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)
