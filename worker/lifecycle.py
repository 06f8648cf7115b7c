"""Each worker's actors get their own database engine, on their own event loop, disposed when it stops.

An asyncpg connection belongs to the event loop that opened it; touching it from another loop's thread
corrupts it (a segfault, at worst). Several dramatiq workers can live in one process (the embedded worker
of each app instance, test workers), each with its own loop thread, so engines are kept *per loop*.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

from portal.config import Settings, get_settings
from portal.core.db import Database

log = structlog.get_logger("portal.worker")

_dbs: dict[asyncio.AbstractEventLoop, Database] = {}
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Settings for the engines this process's actors will use (tests pass their own)."""
    global _settings
    _settings = settings
    # Engines built for other settings must not serve these; each is disposed by its own loop's shutdown.
    for loop, db in list(_dbs.items()):
        if db.settings != settings:
            _dbs.pop(loop, None)


def database() -> Database:
    """The Database of the running event loop (the actors' loop), created on first use there."""
    loop = asyncio.get_running_loop()
    db = _dbs.get(loop)
    if db is None:
        db = _dbs[loop] = Database(_settings or get_settings())
    return db


class DatabaseLifecycle(Middleware):
    """Disposes of the stopping worker's engine on its own loop, while that loop still runs.

    Must be added *after* dramatiq's ``AsyncIO`` middleware: ``after_*`` hooks run in reverse order.
    """

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            return
        db = _dbs.pop(loop_thread.loop, None)
        if db is None:
            return
        try:
            if loop_thread.loop.is_running():
                loop_thread.run_coroutine(db.dispose())
        except Exception:  # never block a shutdown on it
            log.warning("database_dispose_failed", exc_info=True)
