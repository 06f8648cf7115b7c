"""The worker's side of evidence: the served derivatives of a verified original, and deleting objects.

Outbox handlers, run under the system scope (wired by :mod:`portal.registry`). They read only the verified,
content-addressed original and check its SHA-256 first: bytes that are not the ones verified at completion
are never decoded, let alone shown.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core.storage import ObjectExists, ObjectStorage
from portal.evidence import processing
from portal.evidence.services import IntegrityMismatch, read_verified
from portal.evidence.store import current_storage
from portal.models.evidence import Processing, StoredObject

log = structlog.get_logger("portal.evidence")


def derived_keys(obj: StoredObject) -> tuple[str, str]:
    base = f"evidence/{obj.tenant_id}/derived/{obj.id}"
    return f"{base}/display.jpg", f"{base}/thumb.jpg"


async def _put_replacing(storage: ObjectStorage, key: str, data: bytes) -> None:
    """Derivatives are re-creatable: a second run (a worker killed after its puts) replaces them."""
    try:
        await storage.put(key, data, processing.JPEG)
    except ObjectExists:
        await storage.delete(key)
        await storage.put(key, data, processing.JPEG)


async def process_object(
    session: AsyncSession, storage: ObjectStorage, object_id: uuid.UUID, *, local_tz: str | None = None
) -> StoredObject | None:
    """Make the display and thumbnail JPEGs (no metadata) and read EXIF into columns. Idempotent."""
    obj = await session.get(StoredObject, object_id)
    if obj is None or obj.media_type not in processing.IMAGE_TYPES:
        return obj
    try:
        data = await read_verified(storage, obj.key, obj.sha256)
    except IntegrityMismatch:
        # Not a passing fault to retry: the stored bytes are not the verified ones. The picture says it
        # failed (the person may upload it again) and the tenant's audit trail keeps what happened.
        log.error("evidence_integrity_mismatch", object_id=str(obj.id), key=obj.key)
        await _integrity_failed(session, obj)
        return obj
    derived = await anyio.to_thread.run_sync(lambda: processing.derive(data, local_tz=local_tz))
    display_key, thumb_key = derived_keys(obj)
    await _put_replacing(storage, display_key, derived.display)
    await _put_replacing(storage, thumb_key, derived.thumb)
    meta = derived.meta
    obj.display_key, obj.thumb_key = display_key, thumb_key
    obj.derived_size = len(derived.display) + len(derived.thumb)
    obj.captured_at, obj.camera_make, obj.camera_model = meta.captured_at, meta.camera_make, meta.camera_model
    obj.gps_lat, obj.gps_lon = meta.gps_lat, meta.gps_lon
    obj.processing, obj.processed_at = Processing.READY, datetime.now(UTC)
    await session.flush()
    return obj


async def _integrity_failed(session: AsyncSession, obj: StoredObject) -> None:
    if obj.processing is Processing.FAILED:
        return
    obj.processing = Processing.FAILED
    await audit.record(
        session,
        "evidence.integrity_failed",
        tenant_id=obj.tenant_id,
        object_type="evidence_object",
        object_id=obj.id,
        detail={"sha256": obj.sha256, "key": obj.key},
    )
    await session.flush()


async def processing_failed(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The derivatives could not be made, for good: the picture says so (instead of "preparing" for
    ever), and the person can upload it again."""
    obj = await session.get(StoredObject, uuid.UUID(payload["object_id"]))
    if obj is not None and obj.processing is Processing.PENDING:
        obj.processing = Processing.FAILED
        await session.flush()


async def process_handler(session: AsyncSession, payload: dict[str, Any]) -> None:
    await process_object(
        session,
        current_storage(),
        uuid.UUID(payload["object_id"]),
        local_tz=payload.get("tz") or None,
    )


async def delete_objects_handler(session: AsyncSession, payload: dict[str, Any]) -> None:
    storage = current_storage()
    for key in payload.get("keys", []):
        await storage.delete(key)  # a missing object is not an error: safe to run twice
