"""The daily accountability run (registered with the worker's scheduler; imported by ``worker.setup``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.scheduling import daily_key, periodic
from portal.selfcheck import accountability


@periodic("selfcheck.accountability", daily_key)
async def accountability_job(session: AsyncSession, period_key: str) -> None:
    """Once a day: resolve fixed lapses, record new ones (yesterday's patrols included), escalate."""
    await accountability.run(session, datetime.now(UTC))
