"""The browser never decodes a decompression bomb (issue 14): the uploader reads a picture's size from its
header (image_header.js) for every format the server accepts, refuses one over the server's pixel limit with
the server's words before anything decodes or sends it, and never sends a picture it could not make
faithfully: what it cannot size, decode or trust goes as taken, for the server to judge."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat
from playwright.async_api import Page, Request, expect

from portal.evidence import processing
from tests.e2e.test_home import sign_in
from tests.evidence import images

pytestmark = pytest.mark.e2e

PIXELS_ZH = "该图片像素过多，无法安全处理。"
UPLOADS = re.compile(r"/evidence/slots|/storage/upload")
# Counts the browser's decodes of pictures (a spy on the platform's createImageBitmap, which it still calls).
COUNT_DECODES = """
window.__decodes = 0;
const realCreateImageBitmap = window.createImageBitmap;
window.createImageBitmap = function () {
  window.__decodes += 1;
  return realCreateImageBitmap.apply(this, arguments);
};
"""


async def photos_page(page: Page) -> None:
    await page.add_init_script(COUNT_DECODES)
    await sign_in(page, "白霞", "t01.manager")
    await expect(page).to_have_url(re.compile(r"/t/[0-9a-f-]{36}$"))
    await page.goto(page.url + "/photos")
    await expect(page.locator("[data-gallery]")).not_to_contain_text("…")


async def upload(page: Page, path: Path) -> dict[str, Any]:
    """Pick ``path``, wait for the portal to accept it; the completion's answer (the evidence)."""
    async with page.expect_response(re.compile(r"/evidence/slots/[0-9a-f-]{36}/complete$")) as done:
        await page.locator("[data-evidence-input]").set_input_files(str(path))
    answer = await done.value
    assert answer.ok, await answer.text()
    evidence: dict[str, Any] = await answer.json()
    return evidence


async def stored_original(page: Page, evidence: dict[str, Any]) -> bytes:
    original = await page.request.get(evidence["original_url"])
    assert original.ok
    return await original.body()


async def test_a_decompression_bomb_is_refused_before_it_is_decoded_or_sent(
    phone: Page, portal_server: str, tmp_path: Path
) -> None:
    """A 20000×20000 PNG of zeros (49 KB on disk, 1.6 GB decoded): refused at once in the server's words;
    nothing decoded it, nothing was sent, and the page goes on working (the next photo uploads)."""
    page = phone
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(images.png_bomb(20000, 20000))
    await photos_page(page)
    uploader = page.locator("[data-evidence-uploader]")
    # The limit and the words are the server's own (processing.MAX_PIXELS, the "pixels" refusal).
    assert await uploader.get_attribute("data-max-pixels") == str(processing.MAX_PIXELS)
    assert await uploader.get_attribute("data-msg-pixels") == PIXELS_ZH

    sent: list[str] = []

    def remember(request: Request) -> None:
        if UPLOADS.search(request.url):
            sent.append(request.url)

    page.on("request", remember)
    await page.locator("[data-evidence-input]").set_input_files(str(bomb))
    refusal = page.locator("[data-evidence-uploads] li", has_text="bomb.png").get_by_role("status")
    await expect(refusal).to_have_text(PIXELS_ZH)
    await expect(refusal).to_have_class("ev-error")
    assert await page.evaluate("() => window.__decodes") == 0
    # Still responsive: it paints the next frame, and a real photo picked next goes through.
    assert await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(true)))")
    assert sent == []
    page.remove_listener("request", remember)

    photo = tmp_path / "after the bomb.jpg"
    photo.write_bytes(images.jpeg(1200, 900, seed=3))
    evidence = await upload(page, photo)
    assert (evidence["width"], evidence["height"]) == (1200, 900)


async def test_a_photo_is_shrunk_faithfully_and_transparency_is_white(
    phone: Page, portal_server: str, tmp_path: Path
) -> None:
    """A 3000×2000 PNG with a transparent band: decoded, shrunk to 2048 px and re-encoded as a JPEG that
    looks like the picture (not black), its transparent band white as the server would flatten it."""
    page = phone
    source = images.picture(3000, 2000, seed=7).convert("RGBA")
    source.paste((0, 0, 0, 0), (0, 0, 3000, 300))  # fully transparent top band
    path = tmp_path / "透明 3000x2000.png"
    source.save(path, "PNG")
    await photos_page(page)

    evidence = await upload(page, path)
    assert await page.evaluate("() => window.__decodes") == 1
    sent = Image.open(io.BytesIO(await stored_original(page, evidence)))
    assert sent.format == "JPEG" and sent.size == (2048, 1365)
    band = ImageStat.Stat(sent.crop((0, 0, 2048, 180)).convert("L"))
    assert band.mean[0] > 250  # white, not the black a JPEG makes of transparent pixels
    body = ImageStat.Stat(sent.crop((0, 300, 2048, 1365)).convert("L")).mean[0]
    expected = ImageStat.Stat(source.convert("RGB").crop((0, 440, 3000, 2000)).convert("L")).mean[0]
    assert abs(body - expected) < 8  # the picture itself, not a blank or black canvas


async def test_what_cannot_be_sized_or_trusted_goes_as_taken(
    phone: Page, portal_server: str, tmp_path: Path
) -> None:
    """A PDF (no picture header): never decoded, sent unchanged. A HEIC (sized, but Chromium cannot decode
    it) and a one-colour PNG (decoded, but indistinguishable from a decode that drew nothing): sent
    unchanged rather than as a canvas the phone could not vouch for."""
    page = phone
    await photos_page(page)
    files = {
        "通知.pdf": images.pdf(),
        "现场.heic": images.heic(640, 480),
        "一色.png": _flat_png(800, 600),
    }
    decodes = {"通知.pdf": 0, "现场.heic": 1, "一色.png": 1}
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        before = await page.evaluate("() => window.__decodes")
        evidence = await upload(page, path)
        assert await page.evaluate("() => window.__decodes") - before == decodes[name], name
        stored = await stored_original(page, evidence)
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest(), name


async def test_a_picture_without_a_type_is_sent_as_its_header_says(phone: Page, portal_server: str) -> None:
    """Some phones give a HEIC no type, or a generic one: the header names it, and the server takes it."""
    page = phone
    await photos_page(page)
    data = images.heic(640, 480)
    async with page.expect_response(re.compile(r"/evidence/slots/[0-9a-f-]{36}/complete$")) as done:
        await page.locator("[data-evidence-input]").set_input_files(
            {"name": "IMG_0001", "mimeType": "", "buffer": data}
        )
    answer = await done.value
    assert answer.ok, await answer.text()
    evidence = await answer.json()
    assert evidence["media_type"] == "image/heic"
    assert await stored_original(page, evidence) == data


def _flat_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def _save(im: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def _header_cases() -> dict[str, tuple[bytes, tuple[int, int] | None]]:
    rgb = images.picture(641, 479)
    rgba = rgb.convert("RGBA")
    small, large = images.picture(320, 240), images.picture(640, 480, seed=2)
    return {
        "jpeg with EXIF": (images.jpeg(641, 479), (641, 479)),
        # Sized as stored: turning it upright is the decoder's business, the pixel count is the same.
        "jpeg turned by EXIF": (images.jpeg(300, 200, orientation=6), (300, 200)),
        "progressive jpeg": (_save(rgb, "JPEG", progressive=True), (641, 479)),
        # 200 KB of ICC profile in four APP2 segments before the frame header: skipped, not read.
        "jpeg, frame after 200 KB": (_save(rgb, "JPEG", icc_profile=bytes(200_000)), (641, 479)),
        "png": (_save(rgba, "PNG"), (641, 479)),
        "webp lossy (VP8)": (_save(rgb, "WEBP", quality=60), (641, 479)),
        "webp lossless (VP8L)": (_save(rgb, "WEBP", lossless=True), (641, 479)),
        "webp extended (VP8X)": (_save(rgba, "WEBP", quality=60), (641, 479)),
        "heic": (images.heic(640, 480), (640, 480)),
        # Two pictures in one file: the primary one counts, whichever is bigger.
        "heic, small primary": (
            _save(small, "HEIF", save_all=True, append_images=[large], primary_index=0),
            (320, 240),
        ),
        "heic, large primary": (
            _save(small, "HEIF", save_all=True, append_images=[large], primary_index=1),
            (640, 480),
        ),
        "png bomb": (images.png_bomb(20000, 20000), (20000, 20000)),
        "pdf": (images.pdf(), None),
        "text named .jpg": (images.text_renamed_jpg(), None),
        "jpeg cut inside its EXIF": (images.jpeg(641, 479)[:300], None),
        "png cut inside its header": (_save(rgba, "PNG")[:20], None),
        "empty": (b"", None),
    }


async def test_the_header_parser_sizes_every_accepted_format(phone: Page, portal_server: str) -> None:
    """image_header.js, run in the page on real files of each format the server accepts (Pillow and
    pillow-heif made them), agrees with Pillow; what it cannot size with certainty is null."""
    page = phone
    await page.goto("/signin")
    await page.add_script_tag(url="/static/js/image_header.js")
    cases = _header_cases()
    for name, (data, size) in cases.items():
        if size is not None and name != "png bomb":
            assert Image.open(io.BytesIO(data)).size == size, name  # the expectation is Pillow's
    read = """async (files) => {
      const out = {};
      for (const [name, b64] of Object.entries(files)) {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        out[name] = await window.PortalImageHeader.read(new Blob([bytes]));
      }
      return out;
    }"""
    found = await page.evaluate(
        read, {name: base64.b64encode(data).decode() for name, (data, _) in cases.items()}
    )
    sizes = {name: (v["width"], v["height"]) if v else None for name, v in found.items()}
    assert sizes == {name: size for name, (_, size) in cases.items()}
    types = {name: v["type"] for name, v in found.items() if v}
    assert types["heic"] == "image/heic" and types["webp lossless (VP8L)"] == "image/webp"
    assert types["png"] == "image/png" and types["progressive jpeg"] == "image/jpeg"
