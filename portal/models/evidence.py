"""Tables of photo and document evidence (DESIGN section 8).

Three tenant-owned tables:

- :class:`UploadSlot` — one presigned upload the portal handed out, keyed by the browser's own id
  (``client_id``) so that a retry on a weak signal gets the same slot back instead of a second one. Its
  ``key`` is a staging key: the browser may write it as long as the presigned POST lives, so nothing is
  ever read from it after completion.
- :class:`StoredObject` — one verified original in object storage, unique per tenant by SHA-256 (the same
  photo uploaded twice is stored once), with what the processing job learnt from it (derivatives, EXIF).
  Its ``key`` is content-addressed and named by no upload policy: the portal alone writes it, with the
  bytes it verified.
- :class:`Evidence` — one "this file is proof of that thing" link from an owner (a hazard, a visit...) to a
  stored object. Originals are immutable; derivatives can be re-made at any time.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base
from portal.core.db import str_enum as _enum
from portal.core.tenancy import TenantScoped


class OwnerType(enum.StrEnum):
    """What a piece of evidence proves something about. Later issues add resolvers for their types."""

    SELFCHECK_ITEM = "selfcheck_item"
    HAZARD = "hazard"
    RECTIFICATION = "rectification"
    VISIT = "visit"
    TIP = "tip"
    TENANT = "tenant"


class SlotStatus(enum.StrEnum):
    PENDING = "pending"  # handed out; the browser may be uploading
    COMPLETED = "completed"  # verified and linked (``evidence_id``)
    REJECTED = "rejected"  # the upload failed verification or expired; ``reject_code`` says why


class Processing(enum.StrEnum):
    PENDING = "pending"  # an outbox row will make the derivatives
    READY = "ready"
    NOT_NEEDED = "not_needed"  # PDF: nothing to shrink, nothing to strip
    FAILED = "failed"  # the job gave up (outbox.MAX_ATTEMPTS): shown as such, with a way to upload again


class UploadSlot(Base, TenantScoped):
    __tablename__ = "evidence_upload_slot"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[uuid.UUID] = mapped_column()
    owner_type: Mapped[OwnerType] = mapped_column(_enum(OwnerType, "evidence_owner_type"))
    owner_id: Mapped[uuid.UUID] = mapped_column()
    key: Mapped[str] = mapped_column(String(200), unique=True)
    declared_type: Mapped[str] = mapped_column(String(80))
    declared_size: Mapped[int] = mapped_column(BigInteger)
    max_size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    status: Mapped[SlotStatus] = mapped_column(_enum(SlotStatus, "evidence_slot_status"), index=True)
    reject_code: Mapped[str | None] = mapped_column(String(40))
    evidence_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evidence.id", ondelete="SET NULL"))
    # When retention deleted whatever is left at the staging key, once no presigned POST can write it any
    # more: a completed slot's policy outlives its completion, so a late POST could leave a stray.
    swept_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    __table_args__ = (
        UniqueConstraint("tenant_id", "client_id"),
        # The sweep looks only at slots not swept yet, a few among the millions of completed uploads.
        Index(
            "ix_evidence_upload_slot_unswept",
            "expires_at",
            postgresql_where=text("swept_at IS NULL"),
            sqlite_where=text("swept_at IS NULL"),
        ),
    )


class StoredObject(Base, TenantScoped):
    __tablename__ = "evidence_object"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(80))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    processing: Mapped[Processing] = mapped_column(_enum(Processing, "evidence_processing"))
    display_key: Mapped[str | None] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    derived_size: Mapped[int] = mapped_column(BigInteger, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # From EXIF, read by the processing job. GPS is shown only to the tenant's managers, its responsible
    # person and regulators; the served derivatives carry no metadata at all.
    captured_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    camera_make: Mapped[str | None] = mapped_column(String(80))
    camera_model: Mapped[str | None] = mapped_column(String(80))
    gps_lat: Mapped[float | None] = mapped_column(Float)
    gps_lon: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)


class Evidence(Base, TenantScoped):
    __tablename__ = "evidence"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    owner_type: Mapped[OwnerType] = mapped_column(_enum(OwnerType, "evidence_owner_type"))
    owner_id: Mapped[uuid.UUID] = mapped_column()
    object_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evidence_object.id"), index=True)
    client_id: Mapped[uuid.UUID] = mapped_column()
    filename: Mapped[str] = mapped_column(String(200), default="")
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    uploaded_by_name: Mapped[str] = mapped_column(String(120), default="")

    stored: Mapped[StoredObject] = relationship(lazy="raise")

    __table_args__ = (
        UniqueConstraint("tenant_id", "client_id"),
        Index("ix_evidence_owner", "tenant_id", "owner_type", "owner_id"),
    )
