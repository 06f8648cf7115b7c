"""Periodic evidence jobs (registered by ``portal.registry``)."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from portal.evidence import retention

log = structlog.get_logger("portal.evidence")


async def purge_expired(session: AsyncSession, period_key: str) -> None:
    """Daily: purge evidence past its retention and upload slots that were never completed."""
    from portal.config import get_settings

    items = await retention.purgeable(
        session, now=datetime.now(UTC), retention_years=get_settings().evidence_retention_years
    )
    purged = await retention.purge(session, items)
    log.info("evidence_retention", period=period_key, purged=purged)
