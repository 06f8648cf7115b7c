"""Business rules of evidence: upload slots, verification on completion, downloads.

The browser asks for a slot (:func:`request_slot`) and uploads straight to object storage with the
presigned POST, to a *staging* key. :func:`complete_upload` reads the staging object once, checks size and
content (magic bytes, then a real decode under a pixel limit), records its SHA-256 and writes those very
bytes to a content-addressed key that no upload policy names, then deletes the staging object. A presigned
POST stays valid until it expires, also after completion, so nothing is ever read from a staging key
again: what was verified is what is kept, processed and served, and every read of an original checks its
hash (:func:`read_verified`). The worker's side is :mod:`portal.evidence.derivatives`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from portal.audit import services as audit
from portal.config import Settings
from portal.core import outbox
from portal.core.db import Database
from portal.core.storage import ObjectExists, ObjectNotFound, ObjectStorage, PresignedUpload
from portal.core.tenancy import Scope, ScopeKind
from portal.evidence import processing
from portal.evidence.owners import EvidenceNotFound, is_frozen, may_see_private, resolve_owner, viewer_scope
from portal.models.evidence import Evidence, OwnerType, Processing, SlotStatus, StoredObject, UploadSlot

PROCESS_TOPIC = "evidence.process"
DELETE_TOPIC = "evidence.delete_objects"
SLOT_EXPIRY = timedelta(minutes=15)
MB = 1024 * 1024


class EvidenceError(ValueError):
    """A rule was broken; ``code`` names it for a translated message (see routes.MESSAGES). ``refused``:
    the uploaded file itself was refused and deleted, which :func:`record_refusal` keeps on the slot."""

    def __init__(self, code: str, detail: str = "", *, refused: bool = False) -> None:
        super().__init__(detail or code)
        self.code = code
        self.refused = refused


@dataclass(frozen=True)
class Limits:
    max_upload: int
    quota: int
    local_tz: str | None = None  # None: the display time zone

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_upload=settings.evidence_max_upload_mb * MB,
            quota=settings.evidence_quota_mb * MB,
            local_tz=settings.display_timezone,
        )


@dataclass(frozen=True)
class Uploader:
    user_id: uuid.UUID
    display_name: str


@dataclass(frozen=True)
class SlotAnswer:
    slot: UploadSlot
    upload: PresignedUpload | None  # None once the slot is completed
    evidence: Evidence | None


# -- quota --------------------------------------------------------------------------------------------


async def used_bytes(session: AsyncSession, tenant_id: uuid.UUID, *, with_pending: bool) -> int:
    stored = (
        await session.execute(
            select(func.coalesce(func.sum(StoredObject.size + StoredObject.derived_size), 0)).where(
                StoredObject.tenant_id == tenant_id
            )
        )
    ).scalar_one()
    pending = 0
    if with_pending:  # slots handed out and not yet completed count, so a burst cannot overrun the quota
        pending = (
            await session.execute(
                select(func.coalesce(func.sum(UploadSlot.declared_size), 0)).where(
                    UploadSlot.tenant_id == tenant_id,
                    UploadSlot.status == SlotStatus.PENDING,
                    UploadSlot.expires_at > datetime.now(UTC),
                )
            )
        ).scalar_one()
    return int(stored) + int(pending)


# -- slots and completion ----------------------------------------------------------------------------


def staging_key(tenant_id: uuid.UUID, client_id: uuid.UUID) -> str:
    """Where the browser uploads: writable by the slot's presigned POST until it expires."""
    return f"evidence/{tenant_id}/uploads/{client_id}"


def content_key(tenant_id: uuid.UUID, sha256: str) -> str:
    """Where a verified original is kept: written by the portal alone, named by its content."""
    return f"evidence/{tenant_id}/objects/{sha256}"


class IntegrityMismatch(Exception):
    """The bytes stored under a verified key are not the ones verified (a storage fault or tampering)."""


async def read_verified(storage: ObjectStorage, key: str, sha256: str) -> bytes:
    """An original's bytes, only if they are still the ones whose hash was recorded."""
    data = await storage.read(key)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IntegrityMismatch(key)
    return data


async def _keep(storage: ObjectStorage, key: str, data: bytes, media_type: str, sha256: str) -> None:
    """Write the verified bytes to their content key. The key may exist already: left by a completion
    whose transaction then failed (the same bytes, by construction) or damaged; only the first is kept."""
    try:
        await storage.put(key, data, media_type)
    except ObjectExists:
        try:
            await read_verified(storage, key, sha256)
        except (IntegrityMismatch, ObjectNotFound):
            await storage.delete(key)
            await storage.put(key, data, media_type)


async def _slot(session: AsyncSession, client_id: uuid.UUID) -> UploadSlot | None:
    return (
        await session.execute(select(UploadSlot).where(UploadSlot.client_id == client_id))
    ).scalar_one_or_none()


async def _evidence(session: AsyncSession, evidence_id: uuid.UUID | None) -> Evidence | None:
    if evidence_id is None:
        return None
    stmt = select(Evidence).where(Evidence.id == evidence_id).options(selectinload(Evidence.stored))
    return (await session.execute(stmt)).scalar_one_or_none()


async def request_slot(
    session: AsyncSession,
    storage: ObjectStorage,
    *,
    client_id: uuid.UUID,
    owner_type: OwnerType,
    owner_id: uuid.UUID,
    content_type: str,
    size: int,
    filename: str,
    uploader: Uploader,
    limits: Limits,
    expires_in: timedelta | None = None,
) -> SlotAnswer:
    """A presigned POST for one file; the same ``client_id`` always answers with the same slot."""
    tenant_id = await resolve_owner(session, owner_type, owner_id)
    if await is_frozen(session, owner_type, owner_id):
        raise EvidenceError("frozen")
    content_type = content_type.strip().lower()
    if content_type not in processing.ACCEPTED_TYPES:
        raise EvidenceError("type")
    if size < 1 or size > limits.max_upload:
        raise EvidenceError("too_large")
    now = datetime.now(UTC)
    slot = await _slot(session, client_id)
    if slot is not None:
        if (slot.owner_type, slot.owner_id, slot.uploaded_by_id) != (owner_type, owner_id, uploader.user_id):
            raise EvidenceError("client_id")
        if slot.status is SlotStatus.COMPLETED:
            return SlotAnswer(slot, None, await _evidence(session, slot.evidence_id))
        if slot.status is SlotStatus.REJECTED:
            raise EvidenceError(slot.reject_code or "damaged")
    elif await used_bytes(session, tenant_id, with_pending=True) + size > limits.quota:
        raise EvidenceError("quota")
    key = staging_key(tenant_id, client_id)
    # The policy allows exactly the declared size, not the global maximum: a slot asked for 1,000 bytes
    # takes no 19 MiB picture (the storage server refuses it, and completion checks again).
    upload = await storage.presign_upload(
        key, content_type=content_type, max_size=size, expires_in=expires_in or SLOT_EXPIRY
    )
    if slot is None:
        slot = UploadSlot(
            tenant_id=tenant_id,
            client_id=client_id,
            owner_type=owner_type,
            owner_id=owner_id,
            key=key,
            uploaded_by_id=uploader.user_id,
            status=SlotStatus.PENDING,
        )
        session.add(slot)
    # A retry gets a fresh signature (and deadline) for the same key.
    slot.declared_type, slot.declared_size, slot.max_size = content_type, size, size
    slot.filename = filename.strip()[:200]
    slot.expires_at = max(upload.expires_at, now)
    await session.flush()
    return SlotAnswer(slot, upload, None)


async def attach_bytes(
    session: AsyncSession,
    storage: ObjectStorage,
    *,
    owner_type: OwnerType,
    owner_id: uuid.UUID,
    data: bytes,
    content_type: str,
    filename: str,
    uploader: Uploader,
    limits: Limits,
) -> Evidence:
    """Server-side upload (the demo city's photos, imports): the same slot → bytes → checks path as a
    phone's upload, with the bytes written by the server instead of the browser."""
    client_id = uuid.uuid4()
    answer = await request_slot(
        session,
        storage,
        client_id=client_id,
        owner_type=owner_type,
        owner_id=owner_id,
        content_type=content_type,
        size=len(data),
        filename=filename,
        uploader=uploader,
        limits=limits,
    )
    await storage.put(answer.slot.key, data, content_type)
    return await complete_upload(session, storage, client_id=client_id, uploader=uploader, limits=limits)


async def _refuse(storage: ObjectStorage, slot: UploadSlot, code: str) -> EvidenceError:
    """Delete what was uploaded; the caller raises the answer. The request's transaction rolls back with
    the error, so the caller keeps the refusal with :func:`record_refusal`, in a transaction of its own."""
    await storage.delete(slot.key)
    return EvidenceError(code, refused=True)


async def record_refusal(db: Database, scope: Scope, client_id: uuid.UUID, code: str) -> None:
    """The slot of a refused file becomes ``rejected`` with its reason: it no longer counts against the
    quota, and completing it again answers the same reason, not "not uploaded"."""
    async with db.session(scope) as session:
        slot = await _slot(session, client_id)
        if slot is not None and slot.status is SlotStatus.PENDING:
            slot.status, slot.reject_code = SlotStatus.REJECTED, code


async def complete_upload(
    session: AsyncSession,
    storage: ObjectStorage,
    *,
    client_id: uuid.UUID,
    uploader: Uploader,
    limits: Limits,
) -> Evidence:
    """Verify the uploaded object and link it to its owner (idempotent per ``client_id``)."""
    viewer_scope(session)
    slot = await _slot(session, client_id)
    if slot is None or slot.uploaded_by_id != uploader.user_id:
        raise EvidenceNotFound()
    if slot.status is SlotStatus.COMPLETED:
        done = await _evidence(session, slot.evidence_id)
        if done is None:
            raise EvidenceNotFound()
        return done
    if slot.status is SlotStatus.REJECTED:
        raise EvidenceError(slot.reject_code or "damaged")
    # The owner may have been frozen while the bytes travelled (a self-check submitted meanwhile).
    if await is_frozen(session, slot.owner_type, slot.owner_id):
        raise await _refuse(storage, slot, "frozen")
    info = await storage.head(slot.key)
    if info is None:
        raise EvidenceError("expired" if slot.expires_at <= datetime.now(UTC) else "not_uploaded")
    if info.size > slot.max_size:
        raise await _refuse(storage, slot, "too_large")
    # Read once: these bytes are the ones checked, hashed and kept, whatever is posted to the key later.
    data = await storage.read(slot.key)
    if len(data) > slot.max_size:
        raise await _refuse(storage, slot, "too_large")
    try:
        found = await anyio.to_thread.run_sync(processing.inspect, data)
    except processing.Rejected as exc:
        raise await _refuse(storage, slot, exc.code) from exc
    digest = hashlib.sha256(data).hexdigest()
    tenant_id = slot.tenant_id
    stored = (
        await session.execute(
            select(StoredObject).where(StoredObject.tenant_id == tenant_id, StoredObject.sha256 == digest)
        )
    ).scalar_one_or_none()
    deduplicated = stored is not None
    if stored is None:
        if await used_bytes(session, tenant_id, with_pending=False) + len(data) > limits.quota:
            raise await _refuse(storage, slot, "quota")
        key = content_key(tenant_id, digest)
        # Stored under the type found in the bytes, not the one the browser declared.
        await _keep(storage, key, data, found.media_type, digest)
        is_image = found.media_type in processing.IMAGE_TYPES
        stored = StoredObject(
            tenant_id=tenant_id,
            sha256=digest,
            key=key,
            size=len(data),
            media_type=found.media_type,
            width=found.width,
            height=found.height,
            processing=Processing.PENDING if is_image else Processing.NOT_NEEDED,
            derived_size=0,
        )
        session.add(stored)
        await session.flush()
        if is_image:
            payload = {"object_id": str(stored.id), "tz": limits.local_tz}
            await outbox.emit(session, PROCESS_TOPIC, payload, tenant_id=tenant_id)
    evidence = (
        await session.execute(
            select(Evidence).where(
                Evidence.owner_type == slot.owner_type,
                Evidence.owner_id == slot.owner_id,
                Evidence.object_id == stored.id,
            )
        )
    ).scalar_one_or_none()
    if evidence is None:
        evidence = Evidence(
            tenant_id=tenant_id,
            owner_type=slot.owner_type,
            owner_id=slot.owner_id,
            object_id=stored.id,
            client_id=slot.client_id,
            filename=slot.filename,
            uploaded_by_id=uploader.user_id,
            uploaded_by_name=uploader.display_name[:120],
        )
        session.add(evidence)
        await session.flush()
        await audit.record(
            session,
            "evidence.added",
            tenant_id=tenant_id,
            object_type="evidence",
            object_id=evidence.id,
            detail={
                "owner_type": slot.owner_type.value,
                "owner_id": str(slot.owner_id),
                "sha256": digest,
                "size": len(data),
                "media_type": found.media_type,
                "deduplicated": deduplicated,
            },
        )
    evidence.stored = stored
    slot.status, slot.evidence_id = SlotStatus.COMPLETED, evidence.id
    await session.flush()
    # Kept elsewhere (or already stored): the staging copy goes. Retention sweeps the key again once the
    # POST policy has expired, in case something was posted to it after this.
    await storage.delete(slot.key)
    return evidence


# -- reading --------------------------------------------------------------------------------------------


async def gallery(session: AsyncSession, owner_type: OwnerType, owner_id: uuid.UUID) -> Sequence[Evidence]:
    """Evidence of one owner, newest first (EvidenceNotFound when the owner is not in scope)."""
    await resolve_owner(session, owner_type, owner_id)
    stmt = (
        select(Evidence)
        .where(Evidence.owner_type == owner_type, Evidence.owner_id == owner_id)
        .options(selectinload(Evidence.stored))
        .order_by(Evidence.created_at.desc())
    )
    return (await session.execute(stmt)).scalars().all()


@dataclass(frozen=True)
class Download:
    key: str
    media_type: str
    filename: str | None  # set: served as an attachment
    sha256: str | None = None  # set: the original itself, served by the portal after checking the hash


async def download(
    session: AsyncSession, evidence_id: uuid.UUID, variant: str, *, user_id: uuid.UUID | None
) -> Download:
    """Which object to sign for ``display``, ``thumb`` or ``original`` (EvidenceNotFound otherwise)."""
    kind = viewer_scope(session)
    evidence = await _evidence(session, evidence_id)
    if evidence is None:
        raise EvidenceNotFound()
    obj = evidence.stored
    name = evidence.filename or f"evidence-{evidence.id}"
    if variant == "original":
        if not await may_see_private(session, user_id, evidence.tenant_id):
            raise EvidenceNotFound()
        if kind is not ScopeKind.TENANT:  # a regulator's cross-tenant read is on the record
            await audit.record_reads(session, [evidence.tenant_id], "evidence.original_read")
        return Download(obj.key, obj.media_type, name, obj.sha256)
    if obj.media_type == processing.PDF:
        if variant == "thumb":
            raise EvidenceNotFound()
        # A document: downloaded, never rendered inline.
        return Download(obj.key, obj.media_type, name, obj.sha256)
    key = obj.display_key if variant == "display" else obj.thumb_key if variant == "thumb" else None
    if variant not in ("display", "thumb"):
        raise EvidenceNotFound()
    if key is None:
        raise EvidenceError("processing_failed" if obj.processing is Processing.FAILED else "processing")
    return Download(key, processing.JPEG, None)
