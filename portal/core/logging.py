"""Structured logs with structlog: one line per event, key=value for people, JSON for collectors."""

from __future__ import annotations

import logging
import sys

import structlog

# Libraries that narrate routine work at INFO (the scheduler's every tick, the broker's start and stop,
# alembic's plugins at every start).
NOISY_LIBRARIES = (
    *("pika", "botocore", "urllib3", "aiosqlite", "asyncio"),
    *("apscheduler", "dramatiq", "alembic"),
)


def configure(level: str = "INFO", *, json: bool = False) -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for noisy in NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)
