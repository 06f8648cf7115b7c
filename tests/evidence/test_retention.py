"""Retention: evidence of owners closed longer ago than the retention period may go (and goes, with its
objects, through the outbox); a stored object another owner still uses stays; never-completed slots are
cleaned up after a grace period; the daily job claims its period once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import outbox
from portal.core.outbox import OutboxMessage
from portal.core.tenancy import Scope
from portal.evidence import derivatives, retention, services
from portal.models.evidence import Evidence, OwnerType, SlotStatus, StoredObject, UploadSlot
from tests.evidence import images
from tests.evidence.conftest import Portal
from tests.fixtures.factories import World

CLOSED: set[uuid.UUID] = set()


async def _closed_hazards(session: AsyncSession, cutoff: datetime) -> Sequence[uuid.UUID]:
    return sorted(CLOSED)  # stands in for "hazards closed before cutoff"


@pytest.fixture
def hazard_rule() -> Iterator[None]:
    """This test's rule for hazards, and whatever rule was registered before it back afterwards."""
    before = retention._rules.get(OwnerType.HAZARD)
    retention.register_rule(OwnerType.HAZARD, _closed_hazards)
    yield
    if before is None:
        retention._rules.pop(OwnerType.HAZARD, None)
    else:
        retention._rules[OwnerType.HAZARD] = before


async def test_purge_after_retention(portal: Portal, world: World, hazard_rule: None) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    photo = images.jpeg(800, 600, seed=41)
    other = images.jpeg(800, 600, seed=42)
    _c, kept = await portal.add(tenant.id, photo)  # the tenant's own photo: no rule, never purged
    await portal.process_pending(tenant.id)
    hazard = uuid.uuid4()
    CLOSED.add(hazard)
    async with portal.database.session(Scope.system("test")) as s:
        # Two photos of a closed hazard (set up directly: hazards do not exist yet); one shares its bytes
        # (its stored object) with the tenant's own photo.
        shared = (
            await s.execute(select(StoredObject).where(StoredObject.tenant_id == tenant.id))
        ).scalar_one()
        lone = StoredObject(
            tenant_id=tenant.id,
            sha256=uuid.uuid4().hex * 2,
            key=f"evidence/{tenant.id}/x/{uuid.uuid4()}",
            size=len(other),
            media_type="image/jpeg",
            processing="not_needed",
            derived_size=0,
        )
        s.add(lone)
        await s.flush()
        await portal.storage.put(lone.key, other, "image/jpeg")
        for obj in (shared, lone):
            s.add(
                Evidence(
                    tenant_id=tenant.id,
                    owner_type=OwnerType.HAZARD,
                    owner_id=hazard,
                    object_id=obj.id,
                    client_id=uuid.uuid4(),
                )
            )
        lone_key, shared_key = lone.key, shared.key
    # A slot handed out and never completed, with a stray upload behind it.
    stray_id = uuid.uuid4()
    slot = await portal.slot(tenant.id, len(photo), client_id=stray_id)
    assert (await portal.upload(slot.json()["upload"], photo)).status_code == 204

    async with portal.database.session(Scope.system("test")) as s:
        now = datetime.now(UTC)
        early = await retention.purgeable(s, now=now, retention_years=3)
        assert early.evidence_ids == [] and stray_id not in await slot_clients(s, early.stale_slot_ids)
        later = await retention.purgeable(s, now=now + timedelta(days=3 * 366 + 2), retention_years=3)
        # Only this tenant's: other tests of the session leave purgeable evidence (e.g. report photos) too.
        ours = set(
            (await s.execute(select(Evidence.id).where(Evidence.tenant_id == tenant.id))).scalars().all()
        )
        assert len([e for e in later.evidence_ids if e in ours]) == 2
        assert stray_id in await slot_clients(s, later.stale_slot_ids)
        assert await retention.purge(s, later, now=now + timedelta(days=3 * 366 + 2)) >= 3
        rows = (
            (
                await s.execute(
                    select(OutboxMessage).where(
                        OutboxMessage.tenant_id == tenant.id,
                        OutboxMessage.topic == services.DELETE_TOPIC,
                        OutboxMessage.status == outbox.PENDING,
                    )
                )
            )
            .scalars()
            .all()
        )
        keys = {k for row in rows for k in row.payload["keys"]}
        assert lone_key in keys and services.staging_key(tenant.id, stray_id) in keys
        assert shared_key not in keys  # still the tenant's own photo
        for row in rows:
            await derivatives.delete_objects_handler(s, row.payload)
        left = (await s.execute(select(Evidence).where(Evidence.tenant_id == tenant.id))).scalars().all()
        assert [e.id for e in left] == [uuid.UUID(kept.json()["id"])]
        slot_row = (await s.execute(select(UploadSlot).where(UploadSlot.client_id == stray_id))).scalar_one()
        assert (slot_row.status, slot_row.reject_code) == (SlotStatus.REJECTED, "expired")
    assert await portal.storage.head(lone_key) is None
    assert await portal.storage.head(services.staging_key(tenant.id, stray_id)) is None
    assert await portal.storage.head(shared_key) is not None
    CLOSED.discard(hazard)


async def slot_clients(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await session.execute(select(UploadSlot.client_id).where(UploadSlot.id.in_(ids)))
    return set(rows.scalars())


def test_years_before_handles_leap_days() -> None:
    with time_machine.travel(datetime(2028, 2, 29, 12, tzinfo=UTC), tick=False):
        assert retention.years_before(datetime.now(UTC), 3) == datetime(2025, 2, 28, 12, tzinfo=UTC)


def test_the_daily_job_is_registered() -> None:
    import portal.evidence.jobs  # noqa: F401
    from worker.scheduler import JOBS

    key_fn, _fn = JOBS["evidence.retention"]
    assert key_fn(datetime(2026, 11, 23, 20, tzinfo=UTC)) == "2026-11-24"  # Shanghai's day
