"""The pure image rules: content decides (magic bytes + a real decode under a pixel limit), derivatives are
upright, small and carry no metadata, and EXIF lands in plain values."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image

from portal.evidence import processing
from tests.evidence import images


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (images.jpeg(640, 480), "image/jpeg"),
        (images.encoded("PNG"), "image/png"),
        (images.encoded("WEBP"), "image/webp"),
        (images.heic(640, 480), "image/heic"),
        (images.pdf(), "application/pdf"),
    ],
)
def test_accepted_content(data: bytes, media_type: str) -> None:
    found = processing.inspect(data)
    assert found.media_type == media_type
    if media_type != "application/pdf":
        assert (found.width, found.height) == (640, 480)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (images.text_renamed_jpg(), "type"),
        (images.encoded("GIF"), "type"),
        (images.encoded("BMP"), "type"),
        (images.truncated_jpeg(), "damaged"),
        (images.pdf()[:-40], "damaged"),
        (images.png_bomb(), "pixels"),
        (images.png_bomb(8001, 8001), "pixels"),  # just over the limit: the explicit check, not Pillow's
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "damaged"),
    ],
)
def test_refused_content(data: bytes, code: str) -> None:
    with pytest.raises(processing.Rejected) as refused:
        processing.inspect(data)
    assert refused.value.code == code


def test_truncated_jpeg_refused_even_after_weasyprint_loosened_pillow() -> None:
    """WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES process-wide when imported (the report PDF lives in
    the same web process): the evidence check must still refuse a photo cut off in transit."""
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # what importing WeasyPrint does, whatever the import order
    with pytest.raises(processing.Rejected) as refused:
        processing.inspect(images.truncated_jpeg())
    assert refused.value.code == "damaged"


def test_derivatives_are_upright_small_and_bare() -> None:
    derived = processing.derive(images.jpeg(4000, 3000, orientation=6))
    assert images.assert_no_metadata(derived.display).size == (768, 1024)
    assert images.assert_no_metadata(derived.thumb).size == (240, 320)
    meta = derived.meta
    assert (meta.gps_lat, meta.gps_lon) == images.GPS
    assert (meta.camera_make, meta.camera_model) == ("HUAWEI", "P60 Pro")
    assert meta.captured_at == datetime(2026, 11, 20, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai


def test_small_pictures_are_not_enlarged_and_alpha_is_flattened() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(out, "PNG")
    derived = processing.derive(out.getvalue())
    display = Image.open(io.BytesIO(derived.display))
    assert display.size == (300, 200) and display.getpixel((10, 10)) == (255, 255, 255)
    assert derived.meta == processing.PhotoMeta()


def test_draft_mode_decodes_a_12_megapixel_jpeg_at_reduced_scale() -> None:
    with Image.open(io.BytesIO(images.jpeg(4000, 3000, gps=False))) as im:
        im.draft("RGB", (1024, 768))
        assert im.size == (2000, 1500)  # the DCT scaled by 1/2: a quarter of the pixels decoded


def test_capture_time_with_the_phones_own_offset() -> None:
    exif = images.exif(gps=False)
    exif.get_ifd(0x8769)[0x9011] = "+09:00"
    out = io.BytesIO()
    images.picture(64, 48).save(out, "JPEG", exif=exif)
    assert processing.derive(out.getvalue()).meta.captured_at == datetime(2026, 11, 20, 5, 30, tzinfo=UTC)
