"""Evidence can belong to a hazard: found (and allowed) through the hazard's scope, kept after it closes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.evidence.models import OwnerType
from portal.evidence.owners import owner_resolver
from portal.evidence.retention import retention_rule
from portal.selfcheck.models import Hazard, HazardStatus


@owner_resolver(OwnerType.HAZARD)
async def hazard_owner(session: AsyncSession, owner_id: uuid.UUID) -> uuid.UUID | None:
    return (await session.execute(select(Hazard.tenant_id).where(Hazard.id == owner_id))).scalar_one_or_none()


@retention_rule(OwnerType.HAZARD)
async def hazards_closed_before(session: AsyncSession, cutoff: datetime) -> Sequence[uuid.UUID]:
    """A hazard's photos are the proof of its rectification: kept the retention period after closing."""
    rows = await session.execute(
        select(Hazard.id).where(Hazard.status == HazardStatus.CLOSED, Hazard.closed_at < cutoff)
    )
    return rows.scalars().all()
