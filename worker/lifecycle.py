"""Each worker process creates its own database engine, on the actors' event loop, and disposes of it."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

from portal.config import Settings, get_settings
from portal.core.db import Database

log = structlog.get_logger("portal.worker")

_db: Database | None = None
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Settings for the engine this process's actors will use (tests pass their own)."""
    global _settings, _db
    _settings = settings
    if _db is not None and _db.settings != settings:
        # An engine built for other settings (an earlier set-up in this process) must not serve these.
        # It cannot be disposed of here (its connections belong to another event loop): drop it.
        _db = None


def database() -> Database:
    """The process's Database, created on first use inside the actors' event loop."""
    global _db
    if _db is None:
        _db = Database(_settings or get_settings())
    return _db


class DatabaseLifecycle(Middleware):
    """Disposes of the process's engine when the worker stops.

    Must be added *after* dramatiq's ``AsyncIO`` middleware: ``after_*`` hooks run in reverse order, so
    this one runs while the actors' event loop is still alive. The engine's connections belong to that
    loop (asyncpg refuses to close them from another one), so they are closed there.
    """

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        global _db
        if _db is None:
            return
        db, _db = _db, None
        loop_thread = get_event_loop_thread()
        try:
            if loop_thread is not None and loop_thread.loop.is_running():
                loop_thread.run_coroutine(db.dispose())
            else:
                asyncio.run(db.dispose())
        except Exception:  # the process is ending anyway; never block the shutdown on it
            log.warning("database_dispose_failed", exc_info=True)
