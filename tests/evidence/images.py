"""Test files made on the fly: photos with EXIF (GPS, capture time, orientation), HEIC, PDF, and bad input."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

GPS = (31.2251389, 121.47)  # 31°13'30.5"N 121°28'12"E — must never reach a served picture


def exif(*, gps: bool = True, orientation: int = 1) -> Image.Exif:
    data = Image.Exif()
    data[0x010F] = "HUAWEI"
    data[0x0110] = "P60 Pro"
    data[0x0112] = orientation
    data.get_ifd(0x8769)[0x9003] = "2026:11:20 14:30:00"  # local time, no offset: Asia/Shanghai
    if gps:
        g = data.get_ifd(0x8825)
        g[1], g[2], g[3], g[4] = "N", (31.0, 13.0, 30.5), "E", (121.0, 28.0, 12.0)
    return data


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """Something with detail (noise on a gradient), so JPEG sizes are realistic."""
    noise = Image.effect_noise((max(1, width // 8), max(1, height // 8)), 50 + seed % 20).convert("RGB")
    grad = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    return Image.blend(noise.resize((width, height), Image.Resampling.BILINEAR), grad, 0.5)


def jpeg(
    width: int = 1600, height: int = 1200, *, gps: bool = True, orientation: int = 1, seed: int = 0
) -> bytes:
    out = io.BytesIO()
    picture(width, height, seed).save(out, "JPEG", quality=85, exif=exif(gps=gps, orientation=orientation))
    return out.getvalue()


def encoded(fmt: str, width: int = 640, height: int = 480, **params: object) -> bytes:
    out = io.BytesIO()
    picture(width, height).save(out, fmt, **params)
    return out.getvalue()


def heic(width: int = 1200, height: int = 900) -> bytes:
    return encoded("HEIF", width, height, exif=exif().tobytes(), quality=60)


def pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(out, "PDF")
    return out.getvalue()


def text_renamed_jpg() -> bytes:
    return b"Dear manager, this is a plain text file someone renamed to photo.jpg.\n" * 20


def truncated_jpeg() -> bytes:
    data = jpeg(800, 600, gps=False)
    return data[: len(data) * 2 // 3]


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG announcing width x height 1-bit pixels: ~50 MB of zeros that compress to ~50 KB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def assert_no_metadata(data: bytes) -> Image.Image:
    """The served picture carries no EXIF at all (so no GPS IFD), no XMP, no ICC profile, no comment."""
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    assert len(im.getexif()) == 0
    assert im.getexif().get_ifd(0x8825) == {}
    assert not {"exif", "xmp", "icc_profile", "comment", "photoshop"} & set(im.info)
    assert b"Exif\x00\x00" not in data and b"HUAWEI" not in data
    return im
