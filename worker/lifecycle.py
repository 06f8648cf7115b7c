"""Each worker process creates its own database engine, on the actors' event loop, and disposes of it."""

from __future__ import annotations

import asyncio
from typing import Any

from dramatiq.middleware import Middleware

from portal.config import Settings, get_settings
from portal.core.db import Database

_db: Database | None = None
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Settings for the engine this process's actors will use (tests pass their own)."""
    global _settings
    _settings = settings


def database() -> Database:
    """The process's Database, created on first use inside the actors' event loop."""
    global _db
    if _db is None:
        _db = Database(_settings or get_settings())
    return _db


class DatabaseLifecycle(Middleware):
    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        global _db
        if _db is not None:
            db, _db = _db, None
            try:
                asyncio.run(db.dispose())
            except RuntimeError:
                pass  # the loop that owned the engine is gone; the process is ending anyway
