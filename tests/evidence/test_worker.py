"""Processing through the outbox with real parts: a real broker and worker, a lost message, and a worker
killed in the middle of the job (derivatives written, transaction not committed). Each photo is processed
exactly once, and the served derivatives never carry EXIF."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import outbox
from portal.core.outbox import OutboxMessage
from portal.core.storage import ObjectInfo, ObjectStorage
from portal.core.tenancy import Scope
from portal.evidence import derivatives, services
from portal.evidence.store import use_storage
from portal.models.evidence import Evidence, Processing, StoredObject
from tests.evidence import images
from tests.evidence.conftest import Portal
from tests.fixtures.brokers import LiveWorker, eventually
from tests.fixtures.factories import World


async def process_row(portal: Portal, evidence_id: str) -> tuple[OutboxMessage, StoredObject]:
    async with portal.database.session(Scope.system("test")) as s:
        obj = (
            await s.execute(select(StoredObject).join(Evidence).where(Evidence.id == uuid.UUID(evidence_id)))
        ).scalar_one()
        row = (
            await s.execute(
                select(OutboxMessage).where(
                    OutboxMessage.topic == services.PROCESS_TOPIC,
                    OutboxMessage.payload["object_id"].as_string() == str(obj.id),
                )
            )
        ).scalar_one()
    return row, obj


@pytest.mark.parametrize("storage_kind", ["s3"])
async def test_real_worker_processes_a_lost_message_once(
    portal: Portal, world: World, live_worker: LiveWorker
) -> None:
    from worker.actors import send_outbox

    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    # First a normal upload: dispatched after the commit, processed by the real worker.
    outbox.set_dispatcher(send_outbox)
    _cid, done = await portal.add(tenant.id, images.jpeg(2000, 1500, seed=11))
    first = done.json()["id"]

    async def ready(evidence_id: str) -> bool:
        _row, obj = await process_row(portal, evidence_id)
        return obj.processing is Processing.READY

    await eventually(lambda: ready(first), what="the dispatched photo to be processed")

    # Then the web process dies between its commit and the hand-off: the row waits, nothing happens...
    outbox.set_dispatcher(None)
    _cid, done = await portal.add(tenant.id, images.jpeg(2000, 1500, seed=12))
    second = done.json()["id"]
    row, obj = await process_row(portal, second)
    assert (row.status, obj.processing) == (outbox.PENDING, Processing.PENDING)
    assert live_worker.recorder.deliveries("process_outbox", str(row.id)) == []

    # ... until the sweeper re-sends it (only ours: other tests' rows stay untouched).
    def resend(message_id: uuid.UUID) -> None:
        if message_id == row.id:
            send_outbox(message_id)

    assert row.id in await outbox.sweep(portal.database, stale_after=timedelta(0), send=resend, limit=100_000)
    await eventually(lambda: ready(second), what="the swept photo to be processed")
    row, obj = await process_row(portal, second)
    assert (row.status, row.attempts) == (outbox.DONE, 0)
    assert [d.error for d in live_worker.recorder.deliveries("process_outbox", str(row.id))] == [None]
    display = await portal.fetch(f"/evidence/{second}/display")
    assert images.assert_no_metadata(display.content).size == (1024, 768)
    assert (obj.gps_lat, obj.gps_lon) == images.GPS


class KilledMidJob(BaseException):
    """Not an Exception: like SIGKILL, the job gets no chance to record a failure."""


class DyingStorage(ObjectStorage):
    """Delegates to the real storage, and dies right after the thumbnail reached it."""

    max_upload_size = 1 << 30

    def __init__(self, inner: ObjectStorage) -> None:
        self.inner = inner

    async def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        info = await self.inner.put(key, data, content_type)
        if key.endswith("/thumb.jpg"):
            raise KilledMidJob()
        return info

    def __getattribute__(self, name: str) -> Any:
        if name in {"put", "inner", "max_upload_size"}:
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)

    presign_upload = presign_download = head = read = delete = check = ensure_ready = None  # type: ignore[assignment]


async def test_worker_killed_mid_job_then_swept_processes_once(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    _cid, done = await portal.add(tenant.id, images.jpeg(1200, 900, seed=21))
    evidence_id = done.json()["id"]
    row, obj = await process_row(portal, evidence_id)

    use_storage(DyingStorage(portal.storage))
    with pytest.raises(KilledMidJob):
        await outbox.process(portal.database, row.id)
    use_storage(portal.storage)
    row, obj = await process_row(portal, evidence_id)
    # Nothing committed: the row is pending as if never touched, though both derivatives were written.
    assert (row.status, row.attempts, obj.processing) == (outbox.PENDING, 0, Processing.PENDING)
    display_key, thumb_key = derivatives.derived_keys(obj)
    assert await portal.storage.head(display_key) is not None
    assert await portal.storage.head(thumb_key) is not None

    sent: list[uuid.UUID] = []
    swept = await outbox.sweep(portal.database, stale_after=timedelta(0), send=sent.append, limit=100_000)
    assert row.id in swept
    assert await outbox.process(portal.database, row.id) == "done"
    assert await outbox.process(portal.database, row.id) == "skipped"  # a duplicate delivery: nothing
    row, obj = await process_row(portal, evidence_id)
    assert (row.status, obj.processing, obj.display_key) == (outbox.DONE, Processing.READY, display_key)
    thumb = await portal.fetch(f"/evidence/{evidence_id}/thumb")
    assert images.assert_no_metadata(thumb.content).size == (320, 240)


async def test_derivatives_can_be_remade(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    _cid, done = await portal.add(tenant.id, images.jpeg(1000, 800, seed=31))
    await portal.process_pending(tenant.id)
    _row, obj = await process_row(portal, done.json()["id"])
    before = await portal.storage.read(obj.display_key or "")
    original = await portal.storage.read(obj.key)
    async with portal.database.session(Scope.system("test")) as s:
        again = await derivatives.process_object(s, portal.storage, obj.id)
    assert again is not None and again.processing is Processing.READY
    assert await portal.storage.read(obj.display_key or "") == before
    assert await portal.storage.read(obj.key) == original  # the original is never touched
