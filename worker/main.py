"""Entry module for the dramatiq CLI (``portal worker`` runs ``dramatiq worker.main``)."""

from portal.config import get_settings
from portal.core.logging import configure as configure_logging
from worker.setup import setup

_settings = get_settings()
configure_logging(_settings.log_level, json=_settings.log_json)
broker = setup(_settings)

if __import__("os").environ.get("PORTAL_WORKER_SCHEDULER") == "1":
    # Every worker process may run a scheduler: the (job, period) claim makes duplicates harmless.
    from worker.scheduler import start as _start_scheduler

    _scheduler = _start_scheduler()
