"""HEIC pictures are decoded in a short-lived child process, never in the web or worker process itself.

Two reasons, both about what HEVC is:

- **Memory.** HEVC has no scaled decoding (JPEG's DCT does 1/2, 1/4, 1/8), so libheif decodes a 12 MP
  iPhone photo whole: ~87 MiB of buffers for one picture, more than a worker process has left above its
  imports (bench/evidence.py: a worker peaked at 216 MiB on HEIC, 143 MiB on JPEG). The child holds those
  buffers for a fraction of a second and hands back only what is needed: the picture shrunk to the size
  asked for (a 1024 px display picture is 2.3 MiB), or just its size when the upload is being checked.
- **Isolation.** libheif and libde265 are C decoders of untrusted input. In a child process with an
  address-space limit, a picture that crashes or balloons them costs that process, which answers
  "damaged", not a worker with other messages in flight or a web process with other requests.

The cost is a process start (Python, Pillow, pillow-heif: ~0.15 s of CPU) per HEIC picture; most phone
uploads are JPEGs (browsers shrink and re-encode photos before upload where they can decode them).

Protocol: the parent writes the file to the child's standard input; the child writes one JSON line
(``{"ok": true, "width", "height", "size", "exif"}`` or ``{"ok": false, "code", "detail"}``) and, when a
size was asked for, the RGB pixels of the shrunk picture.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from dataclasses import dataclass

import structlog
from PIL import Image

log = structlog.get_logger("portal.evidence.heic")

#: Address space of the child: the 12 MP decode needs ~90 MiB on top of Python and the libraries; a 64 MP
#: picture (the pixel limit) about 4× that. Past this the decoder fails inside the child and the picture
#: is "damaged", never an out-of-memory kill of the parent.
ADDRESS_SPACE_LIMIT = 1536 * 1024 * 1024
TIMEOUT_S = 60
# The largest peak resident memory a child reported in this process (KiB): for the log and the benchmark.
_largest_peak = 0
_peak_lock = threading.Lock()


class HeicError(ValueError):
    """The child refused the picture; ``code`` is one of processing.Rejected's codes."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class Decoded:
    width: int  # of the picture as stored
    height: int
    picture: Image.Image | None  # RGB, fitting in the edge asked for (with the EXIF in info["exif"])


def decode(data: bytes, *, max_pixels: int, edge: int | None) -> Decoded:
    """Check (and with ``edge``, shrink) one HEIC picture in a child process; :class:`HeicError` if it
    is not one we accept."""
    cmd = [sys.executable, "-m", "portal.evidence.heic", str(max_pixels), str(edge or 0)]
    cmd.append(str(ADDRESS_SPACE_LIMIT))
    try:
        done = subprocess.run(cmd, input=data, capture_output=True, timeout=TIMEOUT_S, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise HeicError("damaged", f"HEIC decoder still busy after {TIMEOUT_S} s") from exc
    header, _sep, pixels = done.stdout.partition(b"\n")
    try:
        answer = json.loads(header)
    except ValueError:
        answer = {"ok": False, "code": "damaged", "detail": f"HEIC decoder exited with {done.returncode}"}
    _note_peak(int(answer.get("peak_kib", 0)))
    if done.returncode != 0 or not answer.get("ok"):
        raise HeicError(str(answer.get("code", "damaged")), str(answer.get("detail", "")))
    picture = None
    if edge:
        picture = Image.frombytes("RGB", tuple(answer["size"]), pixels)
        picture.info["exif"] = bytes.fromhex(answer["exif"])
    return Decoded(int(answer["width"]), int(answer["height"]), picture)


def _note_peak(kib: int) -> None:
    global _largest_peak
    with _peak_lock:
        _largest_peak = max(_largest_peak, kib)
    log.debug("heic_decoded", child_peak_mib=round(kib / 1024))


def largest_child_peak_kib() -> int:
    """The largest peak resident memory (KiB) of the HEIC children this process has run."""
    return _largest_peak


# -- the child -------------------------------------------------------------------------------------------


def _child(max_pixels: int, edge: int) -> dict[str, object]:
    import warnings

    import pillow_heif
    from PIL import UnidentifiedImageError

    from portal.evidence.processing import _flatten, _resize

    pillow_heif.register_heif_opener()
    data = sys.stdin.buffer.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format != "HEIF":
                    return {"ok": False, "code": "type", "detail": f"the decoder says {im.format}"}
                width, height = im.size
                if width * height > max_pixels:  # from the header, before a single pixel is decoded
                    return {"ok": False, "code": "pixels", "detail": f"{width}x{height} > {max_pixels}"}
                exif = im.info.get("exif") or b""
                im.load()
                answer: dict[str, object] = {"ok": True, "width": width, "height": height, "exif": exif.hex()}
                if edge:
                    small = _resize(_flatten(im), edge)
                    answer["size"] = list(small.size)
                    answer["pixels"] = small.tobytes()
                return answer
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return {"ok": False, "code": "pixels", "detail": str(exc)}
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        return {"ok": False, "code": "damaged", "detail": f"{type(exc).__name__}: {exc}"}


def main(argv: list[str]) -> int:
    import resource

    max_pixels, edge, limit = (int(a) for a in argv)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    answer = _child(max_pixels, edge)
    with open("/proc/self/status") as status:  # VmHWM: this process's own peak (Linux)
        answer["peak_kib"] = next((int(ln.split()[1]) for ln in status if ln.startswith("VmHWM:")), 0)
    pixels = answer.pop("pixels", b"")
    assert isinstance(pixels, bytes)
    sys.stdout.buffer.write(json.dumps(answer).encode() + b"\n" + pixels)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
