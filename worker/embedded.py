"""The embedded shape: dramatiq worker threads and the scheduler inside ``portal serve``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dramatiq
from apscheduler.schedulers.background import BackgroundScheduler

from portal.config import Settings
from worker import scheduler


@dataclass
class EmbeddedWorker:
    worker: dramatiq.Worker
    scheduler: BackgroundScheduler | None

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        self.worker.stop(timeout=5_000)


def start_embedded_worker(broker: Any, settings: Settings) -> EmbeddedWorker:
    worker = dramatiq.Worker(broker, worker_threads=settings.worker_threads, worker_timeout=100)
    worker.start()
    sched = scheduler.start() if settings.scheduler else None
    return EmbeddedWorker(worker, sched)
