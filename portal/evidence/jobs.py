"""Periodic evidence jobs (registered with the worker's scheduler; imported by ``worker.setup``)."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from portal.evidence import retention
from worker.scheduler import daily_key, periodic

log = structlog.get_logger("portal.evidence")


@periodic("evidence.retention", daily_key)
async def purge_expired(session: AsyncSession, period_key: str) -> None:
    """Daily: purge evidence past its retention and upload slots that were never completed."""
    from portal.config import get_settings

    items = await retention.purgeable(
        session, now=datetime.now(UTC), retention_years=get_settings().evidence_retention_years
    )
    purged = await retention.purge(session, items)
    log.info("evidence_retention", period=period_key, purged=purged)
