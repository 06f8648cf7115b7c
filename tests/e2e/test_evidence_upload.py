"""A manager on a phone adds a 12-megapixel photo: the browser shrinks it (≤ 2048 px, EXIF carried over
upright), uploads it with a progress bar, the embedded worker makes the thumbnail, and what is served has no
metadata. The page is checked with axe."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page, expect

from tests.e2e.axe import assert_accessible
from tests.e2e.test_home import sign_in
from tests.evidence import images

pytestmark = pytest.mark.e2e


async def test_phone_photo_is_shrunk_uploaded_and_thumbnailed(
    phone: Page, portal_server: str, tmp_path: Path, screenshot_dir: Path
) -> None:
    page = phone
    photo = tmp_path / "现场 4000x3000.jpg"
    photo.write_bytes(images.jpeg(4000, 3000, orientation=6, seed=1))

    await sign_in(page, "白霞", "t01.manager")
    await expect(page).to_have_url(re.compile(r"/t/[0-9a-f-]{36}$"))
    await page.goto(page.url + "/photos")
    await expect(page.locator("[data-gallery]")).not_to_contain_text("…")  # the gallery fragment arrived
    await assert_accessible(page)

    # The server is shared by the browser tests: other pictures may be in this gallery already, so this
    # one is found by the id its completion answered.
    async with page.expect_response(re.compile(r"/evidence/slots/[0-9a-f-]{36}/complete$")) as done:
        await page.locator("[data-evidence-input]").set_input_files(str(photo))
    evidence = f"/evidence/{(await (await done.value).json())['id']}"
    link = f"{evidence}/display"
    bar = page.get_by_role("progressbar", name=re.compile("4000x3000"))
    await expect(bar).to_have_attribute("value", "100", timeout=30_000)
    selector = f'[data-gallery] a[href="{link}"] img'
    await expect(page.locator(selector)).to_be_visible(timeout=30_000)
    await page.wait_for_function(
        "(s) => (document.querySelector(s) || {}).naturalWidth > 0", arg=selector, timeout=15_000
    )
    await assert_accessible(page)
    await page.screenshot(path=screenshot_dir / "e2e-evidence-phone.png", full_page=True)

    # What reached storage was shrunk on the phone, turned upright, and kept its EXIF (GPS for managers).
    original = await page.request.get(f"{evidence}/original")
    assert original.ok
    uploaded = Image.open(io.BytesIO(await original.body()))
    assert max(uploaded.size) <= 2048 and uploaded.size == (1536, 2048)
    exif = uploaded.getexif()
    assert exif.get(0x0112) == 1 and exif.get_ifd(0x8825)  # upright, location kept for the record
    # The manager sees the location; what is served carries no metadata at all.
    await expect(page.locator("[data-gallery]")).to_contain_text("31.22514, 121.47000")
    display = await page.request.get(link)
    assert images.assert_no_metadata(await display.body()).size == (768, 1024)
    thumb_bytes = await page.request.get(f"{evidence}/thumb")
    assert images.assert_no_metadata(await thumb_bytes.body()).size == (240, 320)


async def test_a_storage_refusal_is_said_in_the_persons_language(
    phone: Page, portal_server: str, tmp_path: Path
) -> None:
    """The storage server refuses the bytes (S3's XML, e.g. a file over the slot's declared size): the
    person reads why, in Chinese, instead of "the upload failed, try again"."""
    page = phone
    photo = tmp_path / "refused.jpg"
    photo.write_bytes(images.jpeg(600, 400, seed=5))
    refusal = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>EntityTooLarge</Code>'
        "<Message>Your proposed upload exceeds the maximum allowed size</Message></Error>"
    )

    async def refuse(route):  # type: ignore[no-untyped-def]
        await route.fulfill(status=400, content_type="application/xml", body=refusal)

    await page.route(re.compile(r"/storage/upload"), refuse)
    await sign_in(page, "白霞", "t01.manager")
    await expect(page).to_have_url(re.compile(r"/t/[0-9a-f-]{36}$"))
    await page.goto(page.url + "/photos")
    await page.locator("[data-evidence-input]").set_input_files(str(photo))
    await expect(page.locator(".ev-error")).to_have_text("文件比门户预期的大：请重新选择。", timeout=30_000)
