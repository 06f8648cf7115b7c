"""Pure image work: sniff, verify, shrink, strip, read EXIF. No database, no storage, no HTTP.

Every function here is CPU-bound and releases the GIL inside Pillow's codecs: callers run them in a
worker thread (``anyio.to_thread``) so the event loop stays free.

- :func:`inspect` decides whether uploaded bytes are what we accept. The *content* decides, never the
  declared type or the file name: :mod:`puremagic` reads the magic bytes, then Pillow must decode the image
  (HEIC through pillow-heif, in a child process) under a pixel limit, so a renamed text file, a truncated
  JPEG or a decompression bomb is refused before anything is recorded.
- :func:`derive` makes the two JPEGs the portal serves (1024 px display, 320 px thumbnail) with no metadata
  at all, using JPEG draft mode (the decoder scales by 1/2, 1/4 or 1/8 in the DCT, so a 12-megapixel photo
  is never decoded at full size), and reads capture time, camera and GPS into plain values.

Memory (a worker process has 150 MiB of peak RSS; ~111 MiB of it is the process before its first message,
its database connections ~7 more): a 12 MP JPEG decoded at 1/2 scale is 2000×1500 pixels, 12 MiB (Pillow
keeps RGB as 4 bytes a pixel). That buffer is the only big one :func:`derive` holds: the display picture is
resampled in bands of rows (no second full-size buffer for the resampler's intermediate pass) and turned
upright only once it is small; one picture is decoded at a time (``_SLOTS``; encoding the small copies
runs beside the next decode), and with the worker's allocator settings (``worker/environment.py``: one
malloc arena, picture buffers always mapped and returned) a freed picture's memory goes back whichever
thread ran it. HEIC pictures are decoded, whole, in a child process (:mod:`portal.evidence.heic`), which
hands back the display-size picture. Measured by bench/evidence.py.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import puremagic
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from portal.core import clock
from portal.evidence import heic

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

# Decoded pictures are big: one decode at a time in this process, however many threads (web requests,
# worker threads) ask. Two 12 MP photos at once need ~2 × 16 MiB on top of the worker's ~118 MiB, past its
# 150 MiB budget; one at a time still does over 900 photos/min (the storage and database work of the
# other messages, and the encoding of the last photo's copies, overlap with it). More throughput = more
# worker processes, each bounded. (In a web process inspect() queues the same way: ~15 ms for a 12 MP
# JPEG, decoded at 1/8 scale.)
_SLOTS = threading.BoundedSemaphore(1)
# Rows of the display picture resampled per call (see _resize): 64 rows of 1024 px are 256 KiB.
_BAND_ROWS = 64

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
    if media_type == HEIC:  # checked in a child process (portal/evidence/heic.py says why)
        checked = _decode_heic(data, max_pixels=max_pixels, edge=None)
        return Inspection(HEIC, checked.width, checked.height)
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


def _fit(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """``size`` scaled so that its longer side is ``edge`` (never enlarged), aspect ratio kept."""
    width, height = size
    if max(width, height) <= edge:
        return size
    if width >= height:
        return edge, max(1, round(height * edge / width))
    return max(1, round(width * edge / height)), edge


def _resize(im: Image.Image, edge: int) -> Image.Image:
    """A new picture fitting in ``edge``×``edge``; ``im`` is left as it is (the caller drops it).

    The box filter, which Pillow widens with the reduction: each output pixel is the average of the source
    area it covers (no aliasing), at ~60 % of bilinear's cost (the resize is a third of the time a photo
    holds the decode slot: 10 ms instead of 17 for a 12 MP draft on this machine); big reductions start with
    a cheap integer box reduction (like ``reducing_gap=2``).
    Resampled in bands of rows: Pillow resamples horizontally into a temporary picture first, which for
    the whole 2000×1500 draft of a 12 MP photo is another 6 MiB; per band it is a few hundred KiB. A band's
    ``box`` is in source coordinates and the filter still reads the rows around it, so the result is the
    one whole-picture resize gives (to ±1 level where a band edge falls between source rows), at the same
    speed.
    """
    size = _fit(im.size, edge)
    if size == im.size:
        return im.copy()  # small already; a copy all the same, since the caller closes ``im``
    factor = int(min(im.width / size[0], im.height / size[1]) / 2)
    if factor >= 2:
        im = im.reduce(factor)
    out = Image.new(im.mode, size)
    step = im.height / size[1]
    for top in range(0, size[1], _BAND_ROWS):
        bottom = min(size[1], top + _BAND_ROWS)
        box = (0.0, top * step, float(im.width), bottom * step)
        out.paste(im.resize((size[0], bottom - top), Image.Resampling.BOX, box=box), (0, top))
    return out


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _open_for_display(data: bytes) -> Image.Image:
    """The picture to make the copies from: HEIC comes already shrunk to the display size from the child
    process that decodes it (with its EXIF), everything else is opened here and decoded by the caller."""
    if data[4:8] != b"ftyp":  # an ISO-BMFF box: of what inspect() accepted, only HEIC (cheaper than sniff())
        return Image.open(io.BytesIO(data))
    picture = _decode_heic(data, max_pixels=MAX_PIXELS, edge=DISPLAY_EDGE).picture
    assert picture is not None
    return picture


def _decode_heic(data: bytes, *, max_pixels: int, edge: int | None) -> heic.Decoded:
    """:func:`heic.decode`, with the child's refusal as ours."""
    try:
        return heic.decode(data, max_pixels=max_pixels, edge=edge)
    except heic.HeicError as exc:
        raise Rejected(exc.code, str(exc)) from exc


def derive(data: bytes, *, local_tz: str | None = None) -> Derived:
    """Display and thumbnail JPEGs (no metadata) plus what EXIF says. Input must have passed inspect()."""
    # The slot covers the decode only: once the decoded picture is closed, what is left (turning and
    # encoding the 1024 px picture, the thumbnail) needs 3 MiB, and runs beside the next photo's decode.
    with _SLOTS, _open_for_display(data) as im:
        meta = read_exif(im, local_tz)
        # What ImageOps.exif_transpose would read (EXIF, else XMP), applied once the picture is small.
        try:
            orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
        except Exception:  # malformed EXIF must not lose the photo (as in read_exif)
            orientation = 1
        if im.format in {"JPEG", "MPO"}:
            # The decoder picks the smallest 1/n scale that still covers the requested size.
            im.draft("RGB", _fit(im.size, DISPLAY_EDGE))
        im.load()
        display = _resize(_flatten(im), DISPLAY_EDGE)
    if orientation in _TRANSPOSE:
        # Turning the small picture: 4× fewer pixels to move than turning the decoded one (~1.5 ms
        # instead of ~10). The fitting box is square, so shrinking first gives the same size, and the
        # same pixels to within rounding.
        display = display.transpose(_TRANSPOSE[orientation])
    display_jpeg = _jpeg(display, DISPLAY_QUALITY)
    thumb = _resize(display, THUMB_EDGE)
    del display
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


def _when(raw: object, offset: object, local_tz: str | None) -> datetime | None:
    text = _text(raw)
    if not text:
        return None
    try:
        naive = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    off = _text(offset)
    tz: timezone | ZoneInfo = ZoneInfo(local_tz) if local_tz else clock.zone()  # EXIF times have no zone
    if off and len(off) == 6 and off[0] in "+-" and off[3] == ":":
        try:
            sign = 1 if off[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))
        except ValueError:
            pass
    return naive.replace(tzinfo=tz).astimezone(UTC)


def read_exif(im: Image.Image, local_tz: str | None = None) -> PhotoMeta:
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
