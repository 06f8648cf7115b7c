"""Evidence of the cycle: photos of a hazard (kept after it closes) and of a self-check answer (frozen when
the self-check is submitted, since the report's signature covers them). Found through the owner's scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models.selfcheck import Hazard, HazardStatus, SelfCheck, SelfCheckAnswer, SelfCheckStatus


async def hazard_owner(session: AsyncSession, owner_id: uuid.UUID) -> uuid.UUID | None:
    return (await session.execute(select(Hazard.tenant_id).where(Hazard.id == owner_id))).scalar_one_or_none()


async def hazards_closed_before(session: AsyncSession, cutoff: datetime) -> Sequence[uuid.UUID]:
    """A hazard's photos are the proof of its rectification: kept the retention period after closing."""
    rows = await session.execute(
        select(Hazard.id).where(Hazard.status == HazardStatus.CLOSED, Hazard.closed_at < cutoff)
    )
    return rows.scalars().all()


async def answer_owner(session: AsyncSession, owner_id: uuid.UUID) -> uuid.UUID | None:
    """A self-check answer's photos (the owner id is the answer's id)."""
    return (
        await session.execute(select(SelfCheckAnswer.tenant_id).where(SelfCheckAnswer.id == owner_id))
    ).scalar_one_or_none()


async def answer_frozen(session: AsyncSession, owner_id: uuid.UUID) -> bool:
    """Submitted answers take no more photos: the report's hash (and signature) covers them."""
    status = (
        await session.execute(
            select(SelfCheck.status)
            .join(SelfCheckAnswer, SelfCheckAnswer.selfcheck_id == SelfCheck.id)
            .where(SelfCheckAnswer.id == owner_id)
        )
    ).scalar_one_or_none()
    return status in (SelfCheckStatus.SUBMITTED, SelfCheckStatus.SIGNED)


async def answers_submitted_before(session: AsyncSession, cutoff: datetime) -> Sequence[uuid.UUID]:
    """A report's photos are kept the retention period after it was submitted, like the report."""
    rows = await session.execute(
        select(SelfCheckAnswer.id)
        .join(SelfCheck, SelfCheck.id == SelfCheckAnswer.selfcheck_id)
        .where(SelfCheck.submitted_at < cutoff)
    )
    return rows.scalars().all()
