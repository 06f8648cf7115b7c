"""HEIC is decoded in a child process (portal/evidence/heic.py): the calling process never loads libheif,
gets back the display-size picture with its EXIF, and a picture the child cannot decode is "damaged"."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portal.evidence import processing
from tests.evidence import images

ROOT = Path(__file__).resolve().parents[2]


def test_a_12_megapixel_heic_becomes_upright_small_and_bare_copies() -> None:
    data = images.heic(4000, 3000)
    assert processing.inspect(data) == processing.Inspection("image/heic", 4000, 3000)
    derived = processing.derive(data)
    assert images.assert_no_metadata(derived.display).size == (1024, 768)
    assert images.assert_no_metadata(derived.thumb).size == (320, 240)
    assert (derived.meta.gps_lat, derived.meta.gps_lon) == images.GPS
    assert (derived.meta.camera_make, derived.meta.camera_model) == ("HUAWEI", "P60 Pro")
    assert derived.meta.captured_at == datetime(2026, 11, 20, 6, 30, tzinfo=UTC)


def test_the_calling_process_never_loads_the_heic_decoder(tmp_path: Path) -> None:
    """In a fresh interpreter (this one has pillow-heif loaded by the test images): check and derive a
    HEIC, then look at what the process has imported."""
    photo = tmp_path / "photo.heic"
    photo.write_bytes(images.heic(1200, 900))
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from portal.evidence import processing
        data = Path({str(photo)!r}).read_bytes()
        width, derived = processing.inspect(data).width, processing.derive(data)
        print("RESULT", width, len(derived.display) > 0, "pillow_heif" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    (result,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]  # logs go there too
    assert result.split()[1:] == ["1200", "True", "False"]


@pytest.mark.parametrize(
    "data",
    [
        images.heic(640, 480)[:-2000],  # cut off in transit
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x17" * 4096,  # a HEIC header, then noise
    ],
)
def test_a_heic_the_child_cannot_decode_is_damaged(data: bytes) -> None:
    assert processing.sniff(data) == "image/heic"
    with pytest.raises(processing.Rejected) as refused:
        processing.inspect(data)
    assert refused.value.code == "damaged"
    with pytest.raises(processing.Rejected) as refused:
        processing.derive(data)
    assert refused.value.code == "damaged"
