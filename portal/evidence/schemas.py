"""Shapes of evidence on the JSON endpoints the uploader calls."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from portal.models.evidence import OwnerType


class SlotIn(BaseModel):
    client_id: uuid.UUID = Field(description="Made by the browser once per file; a retry sends the same one")
    owner_type: OwnerType
    owner_id: uuid.UUID
    content_type: str = Field(max_length=80)
    size: int = Field(ge=1, description="Bytes the browser is about to upload")
    filename: str = Field(default="", max_length=200)


class UploadOut(BaseModel):
    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime


class GpsOut(BaseModel):
    lat: float
    lon: float


class EvidenceOut(BaseModel):
    id: uuid.UUID
    owner_type: OwnerType
    owner_id: uuid.UUID
    media_type: str
    size: int
    width: int | None
    height: int | None
    sha256: str
    processing: str
    captured_at: datetime | None
    uploaded_by: str
    created_at: datetime
    display_url: str
    thumb_url: str | None
    original_url: str | None = Field(
        description="Only for the tenant's managers, responsible person, regulators"
    )
    gps: GpsOut | None = Field(description="Only for the tenant's managers, responsible person, regulators")


class SlotOut(BaseModel):
    client_id: uuid.UUID
    status: str
    max_size: int
    upload: UploadOut | None = Field(description="The presigned POST: send `fields`, then the `file` part")
    evidence: EvidenceOut | None = Field(description="Set once the slot is completed (a retry after success)")
