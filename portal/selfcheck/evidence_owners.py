"""Evidence can belong to a hazard: its photos are found (and allowed) through the hazard's scope."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.evidence.models import OwnerType
from portal.evidence.owners import owner_resolver
from portal.selfcheck.models import Hazard


@owner_resolver(OwnerType.HAZARD)
async def hazard_owner(session: AsyncSession, owner_id: uuid.UUID) -> uuid.UUID | None:
    return (await session.execute(select(Hazard.tenant_id).where(Hazard.id == owner_id))).scalar_one_or_none()
