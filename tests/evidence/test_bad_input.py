"""Bad input is refused with a clear, translated message; nothing is recorded and the stray object is deleted.
Both databases, both storage backends (SeaweedFS enforces the size condition itself: 400 EntityTooLarge)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal.core.tenancy import Scope
from portal.evidence import services
from portal.models.evidence import Evidence, SlotStatus, StoredObject, UploadSlot
from tests.evidence import images
from tests.evidence.conftest import Portal
from tests.fixtures.factories import World


async def recorded(portal: Portal, tenant_id: uuid.UUID) -> tuple[int, int]:
    """(evidence rows, stored objects) of the tenant."""
    async with portal.database.session(Scope.system("test")) as s:
        counts = []
        for model in (Evidence, StoredObject):
            stmt = select(func.count()).select_from(model).where(model.tenant_id == tenant_id)
            counts.append(int((await s.execute(stmt)).scalar_one()))
    return counts[0], counts[1]


async def slot_status(portal: Portal, client_id: uuid.UUID) -> SlotStatus:
    async with portal.database.session(Scope.system("test")) as s:
        slot = (await s.execute(select(UploadSlot).where(UploadSlot.client_id == client_id))).scalar_one()
    return slot.status


def s3_code(response: object) -> str:
    match = re.search(r"<Code>([^<]*)</Code>", response.text)  # type: ignore[attr-defined]
    return match.group(1) if match else ""


@pytest.mark.parametrize(
    ("name", "data", "declared", "code"),
    [
        ("text renamed .jpg", images.text_renamed_jpg(), "image/jpeg", "type"),
        ("truncated JPEG", images.truncated_jpeg(), "image/jpeg", "damaged"),
        ("20000x20000 PNG bomb", images.png_bomb(), "image/png", "pixels"),
        ("PNG declared as HEIC", images.encoded("GIF"), "image/heic", "type"),
    ],
)
async def test_refused_content(
    portal: Portal, world: World, name: str, data: bytes, declared: str, code: str
) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    client_id, done = await portal.add(tenant.id, data, content_type=declared)
    assert done.status_code == 422, name
    problem = done.json()
    assert problem["code"] == code and problem["detail"] == services_message(code)
    assert await recorded(portal, tenant.id) == (0, 0)
    assert await portal.storage.head(services.staging_key(tenant.id, client_id)) is None
    # The refusal is kept on the slot: it no longer counts against the quota, and asking again gives the
    # same reason (not "not uploaded").
    assert await slot_status(portal, client_id) is SlotStatus.REJECTED
    again = await portal.complete(client_id)
    assert (again.status_code, again.json()["code"]) == (422, code)
    async with portal.database.session(Scope.tenant(tenant.id)) as s:
        assert await services.used_bytes(s, tenant.id, with_pending=True) == 0


def services_message(code: str) -> str:
    from portal.core.i18n import _
    from portal.evidence.routes import MESSAGES

    return _(MESSAGES[code])


@pytest.mark.portal_settings(evidence_max_upload_mb=1)
async def test_oversize_is_refused_by_the_slot_and_by_the_storage_server(
    portal: Portal, world: World
) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    big = 1024 * 1024 + 1
    refused = await portal.slot(tenant.id, big)
    assert refused.status_code == 422 and refused.json()["code"] == "too_large"
    assert "1 MB" in refused.json()["detail"]
    # A client that lies about the size: the storage server enforces the declared size itself, well
    # under the global maximum.
    client_id = uuid.uuid4()
    slot = await portal.slot(tenant.id, 1000, client_id=client_id)
    assert slot.status_code == 200
    assert ["content-length-range", 1, 1000] in slot_conditions(portal, slot.json()["upload"])
    up = await portal.upload(slot.json()["upload"], b"\xff\xd8\xff" + b"\0" * 2000)
    assert (up.status_code, s3_code(up)) == (400, "EntityTooLarge")
    done = await portal.complete(client_id)
    assert done.status_code == 409 and done.json()["code"] == "not_uploaded"
    assert await recorded(portal, tenant.id) == (0, 0)


def slot_conditions(portal: Portal, upload: dict) -> list:  # type: ignore[type-arg]
    import base64
    import json

    raw = upload["fields"]["policy"]
    doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    if portal.kind == "file":
        return [["content-length-range", doc["min_size"], doc["max_size"]]]
    return doc["conditions"]


async def test_another_tenants_slot_is_404(portal: Portal, world: World) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    await portal.sign_in(world.users["manager_a"].login)
    client_id = uuid.uuid4()
    slot = await portal.slot(a.id, 5000, client_id=client_id)
    assert slot.status_code == 200
    # A's manager asks for a slot on B: B does not exist for her.
    assert (await portal.slot(b.id, 5000)).status_code == 404
    # B's people cannot complete (or even see) A's slot, whatever the id.
    await portal.sign_in(world.users["both"].login, ctx=f"member:{b.id}")
    assert (await portal.complete(client_id)).status_code == 404
    # ... and a signed slot cannot be bent to write under another key.
    fields = {**slot.json()["upload"]["fields"], "key": services.staging_key(b.id, uuid.uuid4())}
    bent = await portal.upload({**slot.json()["upload"], "fields": fields}, images.jpeg(200, 100))
    assert bent.status_code in (400, 403)
    assert await recorded(portal, b.id) == (0, 0)


async def test_completion_of_a_never_uploaded_key(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    client_id = uuid.uuid4()
    assert (await portal.slot(tenant.id, 5000, client_id=client_id)).status_code == 200
    done = await portal.complete(client_id)
    assert done.status_code == 409 and done.json()["code"] == "not_uploaded"
    assert (await portal.complete(uuid.uuid4())).status_code == 404  # no such slot at all
    assert await recorded(portal, tenant.id) == (0, 0)


async def test_expired_slot(portal: Portal, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    monkeypatch.setattr(services, "SLOT_EXPIRY", timedelta(seconds=1))
    client_id = uuid.uuid4()
    photo = images.jpeg(300, 200)
    # Asked for ten minutes ago (the slot lives one second): expired now, without waiting for it.
    with time_machine.travel(datetime.now(UTC) - timedelta(minutes=10), tick=False):
        slot = await portal.slot(tenant.id, len(photo), client_id=client_id)
    up = await portal.upload(slot.json()["upload"], photo)
    assert up.status_code == 403  # the storage server refuses an expired policy
    done = await portal.complete(client_id)
    assert done.status_code == 422 and done.json()["code"] == "expired"
    assert await recorded(portal, tenant.id) == (0, 0)


@pytest.mark.portal_settings(evidence_quota_mb=1)
async def test_quota_refuses_the_slot(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    photo = images.jpeg(1600, 1200, seed=7)
    _cid, done = await portal.add(tenant.id, photo)
    assert done.status_code == 200
    # What is stored plus what this upload would add is over 1 MB.
    refused = await portal.slot(tenant.id, 1024 * 1024 - len(photo) + 1)
    assert refused.status_code == 422 and refused.json()["code"] == "quota"
    assert "1 MB" in refused.json()["detail"]
    assert await recorded(portal, tenant.id) == (1, 1)
