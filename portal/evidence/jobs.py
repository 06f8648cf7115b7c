"""Periodic evidence jobs (registered by ``portal.registry``)."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from portal.evidence import retention

log = structlog.get_logger("portal.evidence")


async def purge_expired(session: AsyncSession, period_key: str) -> None:
    """Daily: purge evidence past its retention and sweep the staging keys of expired upload slots."""
    from portal.config import get_settings

    now = datetime.now(UTC)
    items = await retention.purgeable(
        session, now=now, retention_years=get_settings().evidence_retention_years
    )
    purged = await retention.purge(session, items, now=now)
    (log.info if purged else log.debug)("evidence_retention", period=period_key, purged=purged)
