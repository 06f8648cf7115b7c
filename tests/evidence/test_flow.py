"""The whole path over HTTP, on both databases and both storage backends (file:// and SeaweedFS S3):
slot → browser POST straight to storage → completion → processing by the real outbox handler → download.
"""

from __future__ import annotations

import io
import uuid

from PIL import Image
from sqlalchemy import func, select

from portal.core.tenancy import Scope
from portal.evidence import services
from portal.models.evidence import Evidence, StoredObject, UploadSlot
from tests.evidence import images
from tests.evidence.conftest import Portal
from tests.fixtures.factories import World


async def count(portal: Portal, model: type, tenant_id: uuid.UUID) -> int:
    async with portal.database.session(Scope.system("test")) as s:
        return int(
            (
                await s.execute(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))  # type: ignore[attr-defined]
            ).scalar_one()
        )


async def test_photo_from_slot_to_stripped_download(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    photo = images.jpeg(1600, 1200, orientation=6)

    client_id = uuid.uuid4()
    slot = await portal.slot(tenant.id, len(photo), client_id=client_id)
    assert slot.status_code == 200, slot.text
    body = slot.json()
    assert body["status"] == "pending" and body["evidence"] is None
    upload = body["upload"]
    assert upload["key"] == services.staging_key(tenant.id, client_id)
    assert upload["fields"]["Content-Type"] == "image/jpeg"
    # A retried slot request (weak signal) answers the same slot, not a second one.
    again = await portal.slot(tenant.id, len(photo), client_id=client_id)
    assert again.status_code == 200 and again.json()["upload"]["key"] == upload["key"]
    assert await count(portal, UploadSlot, tenant.id) == 1

    stored = await portal.upload(upload, photo)
    assert stored.status_code == 204, stored.text
    done = await portal.complete(client_id)
    assert done.status_code == 200, done.text
    ev = done.json()
    assert (ev["media_type"], ev["width"], ev["height"], ev["size"]) == ("image/jpeg", 1600, 1200, len(photo))
    assert ev["processing"] == "pending" and ev["uploaded_by"] == world.users["manager_a"].display_name
    import hashlib

    assert ev["sha256"] == hashlib.sha256(photo).hexdigest()
    # Completing twice (the answer was lost on the way) gives the same evidence.
    assert (await portal.complete(client_id)).json()["id"] == ev["id"]
    # Not processed yet: the thumbnail is not there, and says so.
    assert (await portal.client.get(f"/evidence/{ev['id']}/thumb")).status_code == 409

    assert await portal.process_pending(tenant.id) == ["done"]
    thumb = await portal.fetch(f"/evidence/{ev['id']}/thumb")
    display = await portal.fetch(f"/evidence/{ev['id']}/display")
    assert thumb.status_code == display.status_code == 200
    assert display.headers["content-type"] == "image/jpeg"
    # Upright (EXIF orientation 6 applied), shrunk, and no metadata of any kind.
    assert images.assert_no_metadata(display.content).size == (768, 1024)
    assert images.assert_no_metadata(thumb.content).size == (240, 320)

    # The manager sees GPS and capture time in columns, and may download the untouched original.
    gallery = await portal.client.get(f"/evidence/gallery?owner_type=tenant&owner_id={tenant.id}")
    assert gallery.status_code == 200
    assert "31.22514, 121.47000" in gallery.text and "2026-11-20 14:30" in gallery.text
    original = await portal.fetch(f"/evidence/{ev['id']}/original")
    assert original.status_code == 200 and original.content == photo
    assert "attachment" in original.headers["content-disposition"]
    # Served by the portal, whichever backend: the verified type, never sniffed, never cached.
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in original.headers["cache-control"]
    again = await portal.slot(tenant.id, len(photo), client_id=client_id)
    assert again.json()["upload"] is None
    assert again.json()["evidence"]["gps"] == {"lat": 31.2251389, "lon": 121.47}


async def test_who_sees_location_and_originals(portal: Portal, world: World) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    # "both" is staff of b: uploads there, sees the picture but not where it was taken.
    await portal.sign_in(world.users["both"].login, ctx=f"member:{b.id}")
    _cid, done = await portal.add(b.id, images.jpeg(seed=3))
    ev = done.json()
    await portal.process_pending(b.id)
    gallery = await portal.client.get(f"/evidence/gallery?owner_type=tenant&owner_id={b.id}")
    assert "31.22514" not in gallery.text and "/original" not in gallery.text
    assert (await portal.fetch(f"/evidence/{ev['id']}/display")).status_code == 200
    assert (await portal.client.get(f"/evidence/{ev['id']}/original")).status_code == 404

    # The regulator of the district sees location and original.
    await portal.sign_in(world.users["regulator"].login)
    gallery = await portal.client.get(f"/evidence/gallery?owner_type=tenant&owner_id={b.id}")
    assert gallery.status_code == 200 and "31.22514" in gallery.text
    assert (await portal.fetch(f"/evidence/{ev['id']}/original")).status_code == 200

    # The grid warden of a sees nothing of b, and a's manager neither: exactly 404.
    for login, ctx in ((world.users["warden"].login, ""), (world.users["manager_a"].login, "")):
        await portal.sign_in(login, ctx)
        for variant in ("display", "thumb", "original"):
            assert (await portal.client.get(f"/evidence/{ev['id']}/{variant}")).status_code == 404
        gallery = await portal.client.get(f"/evidence/gallery?owner_type=tenant&owner_id={b.id}")
        assert gallery.status_code == 404
    # An insurer's role never reaches evidence, even of a tenant that consented.
    await portal.sign_in(world.users["insurer"].login)
    c = world.tenants["c"]
    assert (
        await portal.client.get(f"/evidence/gallery?owner_type=tenant&owner_id={c.id}")
    ).status_code == 403
    assert (await portal.slot(c.id, 1000)).status_code == 403
    # The warden of grid a may add a picture to tenant a, but not see its location.
    await portal.sign_in(world.users["warden"].login)
    _cid, done = await portal.add(a.id, images.jpeg(seed=4))
    assert done.status_code == 200 and done.json()["gps"] is None and done.json()["original_url"] is None


async def test_same_bytes_twice_are_stored_once(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    photo = images.jpeg(seed=5)
    first_id, first = await portal.add(tenant.id, photo)
    second_id, second = await portal.add(tenant.id, photo)
    assert first.status_code == second.status_code == 200
    assert second.json()["id"] == first.json()["id"]  # same owner, same bytes: the same evidence
    assert await count(portal, StoredObject, tenant.id) == 1
    # Both uploads' staging objects are gone; the one content-addressed copy stays.
    assert await portal.storage.head(services.staging_key(tenant.id, second_id)) is None
    assert await portal.storage.head(services.staging_key(tenant.id, first_id)) is None
    digest = first.json()["sha256"]
    assert await portal.storage.head(services.content_key(tenant.id, digest)) is not None


async def test_pdf_and_heic_and_png(portal: Portal, world: World) -> None:
    tenant = world.tenants["a"]
    await portal.sign_in(world.users["manager_a"].login)
    _c, pdf = await portal.add(tenant.id, images.pdf(), content_type="application/pdf")
    assert pdf.status_code == 200 and pdf.json()["processing"] == "not_needed"
    doc = await portal.fetch(f"/evidence/{pdf.json()['id']}/display")
    assert doc.status_code == 200 and doc.content.startswith(b"%PDF-")
    assert "attachment" in doc.headers["content-disposition"]  # never rendered inline
    _c, heic = await portal.add(tenant.id, images.heic(), content_type="image/heic")
    _c, png = await portal.add(tenant.id, images.encoded("PNG", 2400, 600), content_type="image/png")
    assert heic.json()["media_type"] == "image/heic" and png.json()["media_type"] == "image/png"
    assert sorted(await portal.process_pending(tenant.id)) == ["done", "done"]
    heic_display = await portal.fetch(f"/evidence/{heic.json()['id']}/display")
    assert images.assert_no_metadata(heic_display.content).size == (1024, 768)
    png_display = Image.open(
        io.BytesIO((await portal.fetch(f"/evidence/{png.json()['id']}/display")).content)
    )
    assert png_display.size == (1024, 256)
    async with portal.database.session(Scope.system("test")) as s:
        heic_obj = (
            await s.execute(
                select(StoredObject).join(Evidence).where(Evidence.id == uuid.UUID(heic.json()["id"]))
            )
        ).scalar_one()
    assert (heic_obj.gps_lat, heic_obj.gps_lon, heic_obj.camera_make) == (*images.GPS, "HUAWEI")
