"""The daily accountability run (registered by ``portal.registry``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from portal.selfcheck.ledger import services as accountability


async def accountability_job(session: AsyncSession, period_key: str) -> None:
    """Once a day: resolve fixed lapses, record new ones (yesterday's patrols included), escalate."""
    await accountability.run(session, datetime.now(UTC))
