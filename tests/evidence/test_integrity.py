"""What was verified is what is kept and served, on both storage backends (file:// and SeaweedFS S3).

A presigned POST stays valid until it expires, also after the upload was completed: whatever is posted to
the slot's key afterwards (another picture, a script, a decompression bomb) reaches neither the original,
nor the derivatives, nor a download, and retention sweeps it. Bytes that change under a verified key (a
storage fault) are never decoded or served, and say so.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from portal.core import outbox
from portal.core.storage import ObjectInfo, ObjectStorage, StorageUnavailable
from portal.core.tenancy import Scope
from portal.evidence import derivatives, retention, services
from portal.evidence.routes import MESSAGES
from portal.evidence.store import use_storage
from portal.models.audit import AuditEntry
from portal.models.evidence import Evidence, Processing, StoredObject, UploadSlot
from tests.evidence import images
from tests.evidence.conftest import Portal
from tests.fixtures.factories import World

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.domain)</script></svg>"
)


async def stored_object(portal: Portal, evidence_id: str) -> StoredObject:
    async with portal.database.session(Scope.system("test")) as s:
        return (
            await s.execute(select(StoredObject).join(Evidence).where(Evidence.id == uuid.UUID(evidence_id)))
        ).scalar_one()


async def test_posting_again_after_verification_changes_nothing(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    photo = images.jpeg(1200, 900, seed=61)
    client_id = uuid.uuid4()
    slot = await portal.slot(tenant.id, len(photo), client_id=client_id)
    upload = slot.json()["upload"]
    assert (await portal.upload(upload, photo)).status_code == 204
    done = await portal.complete(client_id)
    assert done.status_code == 200, done.text
    evidence_id = done.json()["id"]
    obj = await stored_object(portal, evidence_id)
    # The original lives under its hash, at a key no upload policy names; the staging copy is gone.
    assert obj.key == services.content_key(tenant.id, hashlib.sha256(photo).hexdigest())
    assert obj.key != upload["key"]
    assert await portal.storage.head(upload["key"]) is None

    # The same signed POST, still within its life, with other bytes: accepted by the storage server (S3
    # cannot refuse it, and the file backend behaves alike) ...
    for swapped in (images.jpeg(640, 480, seed=62), SVG, images.png_bomb(8000, 8000)):
        assert (await portal.upload(upload, swapped)).status_code == 204
    # ... and changes nothing that was verified: completing again answers the same evidence, the
    # original download is the verified bytes, and the worker makes the derivatives from them.
    again = await portal.complete(client_id)
    assert (again.status_code, again.json()["id"]) == (200, evidence_id)
    original = await portal.fetch(f"/evidence/{evidence_id}/original")
    assert original.status_code == 200 and original.content == photo
    assert await portal.process_pending(tenant.id) == ["done"]
    display = await portal.fetch(f"/evidence/{evidence_id}/display")
    assert images.assert_no_metadata(display.content).size == (1024, 768)
    assert (await stored_object(portal, evidence_id)).processing is Processing.READY

    # Once the POST policy has expired, retention sweeps what was left at the staging key.
    later = datetime.now(UTC) + services.SLOT_EXPIRY + retention.SLOT_GRACE + timedelta(minutes=1)
    async with portal.database.session(Scope.system("test")) as s:
        items = await retention.purgeable(s, now=later, retention_years=3)
        mine = (await s.execute(select(UploadSlot).where(UploadSlot.client_id == client_id))).scalar_one()
        assert mine.id in items.stale_slot_ids
        await retention.purge(s, items, now=later)
        rows = (
            (
                await s.execute(
                    select(outbox.OutboxMessage).where(
                        outbox.OutboxMessage.tenant_id == tenant.id,
                        outbox.OutboxMessage.topic == services.DELETE_TOPIC,
                        outbox.OutboxMessage.status == outbox.PENDING,
                    )
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            await derivatives.delete_objects_handler(s, row.payload)
        assert mine.swept_at is not None and mine.status.value == "completed"
        # Swept once: the next day's run does not look at it again.
        assert mine.id not in (await retention.purgeable(s, now=later, retention_years=3)).stale_slot_ids
    assert await portal.storage.head(upload["key"]) is None
    assert await portal.storage.read(obj.key) == photo


async def test_changed_bytes_under_a_verified_key_are_never_decoded_nor_served(
    portal: Portal, world: World
) -> None:
    """A storage fault (or someone with write access to the bucket) replaces a verified original."""
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    _cid, done = await portal.add(tenant.id, images.jpeg(640, 480, seed=77))
    evidence_id = done.json()["id"]
    obj = await stored_object(portal, evidence_id)
    await portal.storage.delete(obj.key)
    await portal.storage.put(obj.key, images.truncated_jpeg(), "image/jpeg")

    # One attempt, not retries for ever: the picture fails at once and the audit trail says why.
    assert await portal.process_pending(tenant.id) == ["done"]
    assert (await stored_object(portal, evidence_id)).processing is Processing.FAILED
    async with portal.database.session(Scope.system("test")) as s:
        actions = (
            await s.execute(select(AuditEntry.action).where(AuditEntry.object_id == str(obj.id)))
        ).scalars()
        assert "evidence.integrity_failed" in set(actions)
    gallery = await portal.client.get(
        "/evidence/gallery", params={"owner_type": "tenant", "owner_id": str(tenant.id)}
    )
    assert gallery.status_code == 200 and "请重新上传" in gallery.text
    original = await portal.client.get(f"/evidence/{evidence_id}/original")
    assert original.status_code == 409
    assert original.json()["code"] == "integrity"
    assert original.json()["detail"] == "存储中的文件与上传时不一致，因此不予显示。请告知管理员。"
    assert MESSAGES["integrity"]  # the message above is this one's translation


class DerivativesCannotBeStored(ObjectStorage):
    """The real storage, except that it refuses every derivative (a full disk, a broken bucket policy)."""

    max_upload_size = 1 << 30

    def __init__(self, inner: ObjectStorage) -> None:
        self.inner = inner

    async def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        if "/derived/" in key:
            raise StorageUnavailable("no space left on device")
        return await self.inner.put(key, data, content_type)

    def __getattribute__(self, name: str) -> Any:
        if name in {"put", "inner", "max_upload_size"}:
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)

    presign_upload = presign_download = head = read = delete = check = ensure_ready = None  # type: ignore[assignment]


async def test_a_picture_that_cannot_be_prepared_says_so_after_the_last_attempt(
    portal: Portal, world: World
) -> None:
    """Every attempt to store the derivatives fails; after the last one the picture is "failed", not
    "preparing" for ever, and the person is asked to upload it again."""
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    _client_id, done = await portal.add(tenant.id, images.jpeg(640, 480, seed=78))
    assert done.status_code == 200 and done.json()["processing"] == "pending"
    use_storage(DerivativesCannotBeStored(portal.storage))
    try:
        for _attempt in range(outbox.MAX_ATTEMPTS):
            with pytest.raises(StorageUnavailable):
                await portal.process_pending(tenant.id)
    finally:
        use_storage(portal.storage)
    gallery = await portal.client.get(
        "/evidence/gallery", params={"owner_type": "tenant", "owner_id": str(tenant.id)}
    )
    assert gallery.status_code == 200 and "请重新上传" in gallery.text
    thumb = await portal.client.get(f"/evidence/{done.json()['id']}/thumb")
    assert thumb.status_code == 410 and thumb.json()["code"] == "processing_failed"
    assert await portal.process_pending(tenant.id) == []  # nothing left to try


@pytest.mark.parametrize("storage_kind", ["file"])
async def test_an_original_keeps_the_type_found_in_its_bytes(portal: Portal, world: World) -> None:
    """Declared as a JPEG, found to be a PNG: stored, served and downloaded as a PNG."""
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    png = images.encoded("PNG", 320, 240)
    _cid, done = await portal.add(tenant.id, png, content_type="image/jpeg")
    assert done.status_code == 200, done.text
    obj = await stored_object(portal, done.json()["id"])
    assert (await portal.storage.head(obj.key)).content_type == "image/png"  # type: ignore[union-attr]
    original = await portal.fetch(f"/evidence/{done.json()['id']}/original")
    assert original.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(original.content)).format == "PNG"
