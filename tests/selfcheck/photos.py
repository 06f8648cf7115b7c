"""Attaching a photo to a self-check answer the way the portal does (slot → bytes → checks), server-side."""

from __future__ import annotations

import io
import uuid

from PIL import Image

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.evidence import services as evidence
from portal.evidence.store import storage_from_settings
from portal.models.evidence import OwnerType


def small_jpeg(seed: int = 0) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (seed * 37 % 256, 90, 140)).save(out, "JPEG")
    return out.getvalue()


async def attach_photo(
    database: Database,
    settings: Settings,
    tenant_id: uuid.UUID,
    owner_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    owner_type: OwnerType = OwnerType.SELFCHECK_ITEM,
    seed: int = 0,
) -> uuid.UUID:
    storage = storage_from_settings(settings)
    await storage.ensure_ready()
    async with database.session(Scope.tenant(tenant_id)) as s:
        ev = await evidence.attach_bytes(
            s,
            storage,
            owner_type=owner_type,
            owner_id=owner_id,
            data=small_jpeg(seed),
            content_type="image/jpeg",
            filename="现场.jpg",
            uploader=evidence.Uploader(user_id, "测试"),
            limits=evidence.Limits.from_settings(settings),
        )
        return ev.id
