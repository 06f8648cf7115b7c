"""Retention: what may be purged, and purging it durably.

Evidence is kept at least ``PORTAL_EVIDENCE_RETENTION_YEARS`` after its owner was closed (a hazard closed,
a rectification verified...). Each owner type that can close registers a rule naming the owners closed
before a cutoff; owners without a rule (a tenant itself) are never purged. Every upload slot's staging key
is swept a grace period after its presigned POST expired: a slot never completed becomes ``rejected``
(``expired``), and for any slot whatever a late POST left at the key is a stray.

Objects are deleted from storage by an outbox row committed with the database change, so a crash between
the two loses nothing and a stored object is never deleted while a row still points at it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core import outbox
from portal.evidence.services import DELETE_TOPIC
from portal.models.evidence import Evidence, OwnerType, SlotStatus, StoredObject, UploadSlot

ClosedOwners = Callable[[AsyncSession, datetime], Awaitable[Sequence[uuid.UUID]]]
_rules: dict[OwnerType, ClosedOwners] = {}
SLOT_GRACE = timedelta(days=1)


def register_rule(owner_type: OwnerType, fn: ClosedOwners) -> None:
    """``fn(session, cutoff)`` → ids of owners of this type closed before ``cutoff``. Called by
    :mod:`portal.registry` only."""
    _rules[owner_type] = fn


def years_before(now: datetime, years: int) -> datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


@dataclass
class Purgeable:
    evidence_ids: list[uuid.UUID] = field(default_factory=list)
    stale_slot_ids: list[uuid.UUID] = field(default_factory=list)


async def purgeable(
    session: AsyncSession, *, now: datetime, retention_years: int, slot_grace: timedelta = SLOT_GRACE
) -> Purgeable:
    """What may go: evidence of owners closed more than ``retention_years`` ago (and itself older than
    that), and the staging keys of upload slots whose POST policy expired ``slot_grace`` ago."""
    cutoff = years_before(now, retention_years)
    out = Purgeable()
    for owner_type, rule in _rules.items():
        closed = list(await rule(session, cutoff))
        for start in range(0, len(closed), 500):
            rows = await session.execute(
                select(Evidence.id).where(
                    Evidence.owner_type == owner_type,
                    Evidence.owner_id.in_(closed[start : start + 500]),
                    Evidence.created_at < cutoff,
                )
            )
            out.evidence_ids.extend(rows.scalars())
    stale = await session.execute(
        select(UploadSlot.id).where(UploadSlot.swept_at.is_(None), UploadSlot.expires_at < now - slot_grace)
    )
    out.stale_slot_ids.extend(stale.scalars())
    return out


async def purge(session: AsyncSession, items: Purgeable, *, now: datetime) -> int:
    """Delete the rows and queue the objects' deletion (one outbox row per tenant). Returns rows purged."""
    doomed_keys: dict[uuid.UUID, list[str]] = defaultdict(list)
    slots = (
        (await session.execute(select(UploadSlot).where(UploadSlot.id.in_(items.stale_slot_ids))))
        .scalars()
        .all()
    )
    for slot in slots:
        if slot.status is SlotStatus.PENDING:
            slot.status, slot.reject_code = SlotStatus.REJECTED, "expired"
        slot.swept_at = now
        doomed_keys[slot.tenant_id].append(slot.key)
    evidence = (
        (await session.execute(select(Evidence).where(Evidence.id.in_(items.evidence_ids)))).scalars().all()
    )
    object_ids = {e.object_id for e in evidence}
    for e in evidence:
        await audit.record(
            session,
            "evidence.purged",
            tenant_id=e.tenant_id,
            object_type="evidence",
            object_id=e.id,
            detail={"owner_type": e.owner_type.value, "owner_id": str(e.owner_id)},
        )
        await session.delete(e)
    await session.flush()
    if object_ids:
        still_used = set(
            (
                await session.execute(select(Evidence.object_id).where(Evidence.object_id.in_(object_ids)))
            ).scalars()
        )
        gone = (
            (await session.execute(select(StoredObject).where(StoredObject.id.in_(object_ids - still_used))))
            .scalars()
            .all()
        )
        for obj in gone:
            doomed_keys[obj.tenant_id].extend(k for k in (obj.key, obj.display_key, obj.thumb_key) if k)
        await session.execute(delete(StoredObject).where(StoredObject.id.in_([o.id for o in gone])))
    for tenant_id, keys in doomed_keys.items():
        await outbox.emit(session, DELETE_TOPIC, {"keys": keys}, tenant_id=tenant_id)
    return len(slots) + len(evidence)
