"""Pure image work: sniff, verify, shrink, strip, read EXIF. No database, no storage, no HTTP.

Every function here is CPU-bound and releases the GIL inside Pillow's codecs: callers run them in a
worker thread (``anyio.to_thread``) so the event loop stays free.

- :func:`inspect` decides whether uploaded bytes are what we accept. The *content* decides, never the
  declared type or the file name: :mod:`puremagic` reads the magic bytes, then Pillow must decode the image
  (HEIC through pillow-heif) under a pixel limit, so a renamed text file, a truncated JPEG or a
  decompression bomb is refused before anything is recorded.
- :func:`derive` makes the two JPEGs the portal serves (1024 px display, 320 px thumbnail) with no metadata
  at all, using JPEG draft mode (the decoder scales by 1/2, 1/4 or 1/8 in the DCT, so a 12-megapixel photo
  is never decoded at full size), and reads capture time, camera and GPS into plain values.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pillow_heif
import puremagic
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

pillow_heif.register_heif_opener()

JPEG, PNG, WEBP, HEIC, PDF = "image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"
#: What a browser may declare for a slot (the storage server enforces it) and what the content may be.
ACCEPTED_TYPES = frozenset({JPEG, PNG, WEBP, HEIC, "image/heif", PDF})
IMAGE_TYPES = frozenset({JPEG, PNG, WEBP, HEIC})
#: Largest decoded image we accept: 64 megapixels covers a 48/50 MP phone camera; anything bigger is
#: refused before a single pixel is decoded (decompression-bomb guard, together with MAX_IMAGE_PIXELS).
MAX_PIXELS = 64_000_000
DISPLAY_EDGE = 1024
THUMB_EDGE = 320
DISPLAY_QUALITY = 82
THUMB_QUALITY = 78

# Pillow's own guard: a warning above this, DecompressionBombError above twice this. Our explicit check
# in inspect() refuses everything above MAX_PIXELS.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Decoded pictures are big: at most one image job per core at a time in this process, however many threads
# (web requests, worker threads) ask. Bounds peak memory; more would not be faster anyway.
_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))

_SNIFF_TO_TYPE = {JPEG: JPEG, PNG: PNG, WEBP: WEBP, "image/heic": HEIC, "image/heif": HEIC, PDF: PDF}
# What Pillow says it decoded, per sniffed type: the two must agree.
_FORMATS = {JPEG: {"JPEG", "MPO"}, PNG: {"PNG"}, WEBP: {"WEBP"}, HEIC: {"HEIF"}}

# EXIF tags (TIFF/EXIF 2.3 numbers).
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_ORIGINAL = 0x9003, 0x9011


class Rejected(ValueError):
    """The bytes are not acceptable evidence; ``code`` names why (for a translated message)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


@dataclass(frozen=True)
class Inspection:
    media_type: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class PhotoMeta:
    captured_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None


@dataclass(frozen=True)
class Derived:
    display: bytes
    thumb: bytes
    meta: PhotoMeta


def sniff(data: bytes) -> str:
    """The accepted media type the magic bytes say, or Rejected('type')."""
    try:
        matches = puremagic.magic_string(data[:8192])
    except (puremagic.PureError, ValueError):
        matches = []
    for match in matches:
        media_type = _SNIFF_TO_TYPE.get(match.mime_type)
        if media_type is not None:
            return media_type
    raise Rejected("type", "content is not a JPEG, PNG, WebP, HEIC or PDF file")


def inspect(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Inspection:
    """Verify content and decodability; raise :class:`Rejected` with a code otherwise."""
    with _SLOTS:
        return _inspect(data, max_pixels)


def _inspect(data: bytes, max_pixels: int) -> Inspection:
    # WeasyPrint (the report PDF) turns Pillow's LOAD_TRUNCATED_IMAGES on when it is imported, for the
    # whole process; an upload cut off in transit must still be refused, so decoding is made strict here.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    media_type = sniff(data)
    if media_type == PDF:
        # A PDF that stops before its end-of-file marker was cut off in transit.
        if b"%%EOF" not in data[-2048:]:
            raise Rejected("damaged", "PDF without an end-of-file marker")
        return Inspection(PDF, None, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in _FORMATS[media_type]:
                    raise Rejected("type", f"magic bytes say {media_type}, the decoder says {im.format}")
                width, height = im.size
                # Explicit, before any pixel is decoded: the header alone can announce a bomb.
                if width * height > max_pixels:
                    raise Rejected("pixels", f"{width}x{height} is more than {max_pixels} pixels")
                if im.format in {"JPEG", "MPO"}:
                    # Every scan is still entropy-decoded (a truncated file fails), but at 1/8 scale.
                    im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                im.load()
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected("pixels", str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise Rejected("damaged", f"{type(exc).__name__}: {exc}") from exc
    return Inspection(media_type, width, height)


def _flatten(im: Image.Image) -> Image.Image:
    """RGB without alpha (transparent areas on white), whatever the source mode."""
    if im.mode in {"RGBA", "LA"} or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return im if im.mode == "RGB" else im.convert("RGB")


def _jpeg(im: Image.Image, quality: int) -> bytes:
    # Pillow writes EXIF, ICC and XMP only when passed to save(); the comment it would take from info.
    im.info = {}
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, optimize=False, progressive=False)
    return out.getvalue()


def _shrink(im: Image.Image, edge: int) -> Image.Image:
    """In place (the larger picture is not needed afterwards: less memory per job)."""
    if max(im.size) > edge:
        # reducing_gap: a cheap integer box reduction first for big factors; then bilinear, which Pillow
        # scales with the reduction (a proper area filter, no aliasing) at ~60 % of bicubic's cost.
        im.thumbnail((edge, edge), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return im


def derive(data: bytes, *, local_tz: str = "Asia/Shanghai") -> Derived:
    """Display and thumbnail JPEGs (no metadata) plus what EXIF says. Input must have passed inspect()."""
    with _SLOTS, Image.open(io.BytesIO(data)) as im:
        meta = read_exif(im, local_tz)
        if im.format in {"JPEG", "MPO"}:
            longest = max(im.size)
            scale = DISPLAY_EDGE / longest if longest > DISPLAY_EDGE else 1.0
            # The decoder picks the smallest 1/n scale that still covers the requested size.
            im.draft("RGB", (max(1, round(im.width * scale)), max(1, round(im.height * scale))))
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
        display = _shrink(_flatten(im), DISPLAY_EDGE)
        display_jpeg = _jpeg(display, DISPLAY_QUALITY)
        thumb = _shrink(display, THUMB_EDGE)  # the display picture is done with: shrink it in place
        return Derived(display_jpeg, _jpeg(thumb, THUMB_QUALITY), meta)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned[:80] or None


def _dms(value: object, ref: object) -> float | None:
    try:
        d, m, s = (float(x) for x in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60 + s / 3600
    if _text(ref) in {"S", "W"}:
        degrees = -degrees
    return round(degrees, 7)


def _when(raw: object, offset: object, local_tz: str) -> datetime | None:
    text = _text(raw)
    if not text:
        return None
    try:
        naive = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    off = _text(offset)
    tz: timezone | ZoneInfo = ZoneInfo(local_tz)
    if off and len(off) == 6 and off[0] in "+-" and off[3] == ":":
        try:
            sign = 1 if off[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))
        except ValueError:
            pass
    return naive.replace(tzinfo=tz).astimezone(UTC)


def read_exif(im: Image.Image, local_tz: str = "Asia/Shanghai") -> PhotoMeta:
    """Capture time (UTC; the phone's own offset if it wrote one, else ``local_tz``), camera, GPS."""
    try:
        exif = im.getexif()
        base = dict(exif)
        sub = dict(exif.get_ifd(_EXIF_IFD))
        gps = dict(exif.get_ifd(_GPS_IFD))
    except Exception:  # malformed EXIF must not lose the photo; the columns stay empty
        return PhotoMeta()
    lat, lon = _dms(gps.get(2), gps.get(1)), _dms(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    return PhotoMeta(
        captured_at=_when(
            sub.get(_DATETIME_ORIGINAL) or base.get(_DATETIME), sub.get(_OFFSET_ORIGINAL), local_tz
        ),
        camera_make=_text(base.get(_MAKE)),
        camera_model=_text(base.get(_MODEL)),
        gps_lat=lat,
        gps_lon=lon,
    )
