"""The worker side of bench/evidence.py: one child process per arm, running the real actor over pending rows.

python bench/_evidence_worker.py --child draft|naive --database-url URL --storage DIR --threads N < IDS

IDS: the outbox message ids to process, one a line (the parent reads them: a second database engine in
this process, only to find them, would count in the worker's memory). The parent starts this process with
the environment ``portal worker`` gives its processes (``worker.environment``).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD_TIMEOUT_S = 150


def naive_derive(data: bytes, *, local_tz: str = "Asia/Shanghai") -> Any:
    """The baseline: decode every pixel, LANCZOS straight from full size."""
    from PIL import Image, ImageOps

    from portal.evidence import processing as p

    with Image.open(io.BytesIO(data)) as im:
        meta = p.read_exif(im, local_tz)
        rgb = p._flatten(ImageOps.exif_transpose(im))
        display, thumb = rgb.copy(), rgb.copy()
        display.thumbnail((p.DISPLAY_EDGE, p.DISPLAY_EDGE), Image.Resampling.LANCZOS, reducing_gap=None)
        thumb.thumbnail((p.THUMB_EDGE, p.THUMB_EDGE), Image.Resampling.LANCZOS, reducing_gap=None)
        return p.Derived(p._jpeg(display, p.DISPLAY_QUALITY), p._jpeg(thumb, p.THUMB_QUALITY), meta)


def child(args: argparse.Namespace) -> None:
    import dramatiq
    from evidence import settings_for

    from portal.evidence import heic, processing
    from portal.evidence.store import storage_from_settings, use_storage
    from worker.setup import setup

    ids = [line.strip() for line in sys.stdin if line.strip()]
    settings = settings_for(args.database_url, Path(args.storage))
    if args.mode == "naive":
        processing.derive = naive_derive  # type: ignore[assignment]
    broker = setup(settings)
    use_storage(storage_from_settings(settings))
    from worker.actors import process_outbox

    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=100)
    worker.start()
    rss_started = vm_kb("VmRSS")
    # Warm-up (the actors' event loop, the engine's first connections), not timed.
    n_warm = args.threads if len(ids) > 2 * args.threads else 0
    warm, timed = ids[:n_warm], ids[n_warm:]
    for msg_id in warm:
        process_outbox.send(msg_id)
    broker.join("outbox", timeout=CHILD_TIMEOUT_S * 1000)
    rss_before = vm_kb("VmRSS")
    started = time.perf_counter()
    for msg_id in timed:
        process_outbox.send(msg_id)
    broker.join("outbox", timeout=CHILD_TIMEOUT_S * 1000)
    elapsed = time.perf_counter() - started
    worker.stop(timeout=10_000)
    # VmHWM: this process's own peak (ru_maxrss would include the parent's, kept across fork + exec).
    peak = vm_kb("VmHWM")
    print(
        json.dumps(
            {
                "photos": len(timed),
                "seconds": elapsed,
                "rss_started_kb": rss_started,
                "rss_before_kb": rss_before,
                "peak_rss_kb": peak,
                # HEIC pictures are decoded in child processes (portal/evidence/heic.py): their own peak.
                "heic_child_peak_kb": heic.largest_child_peak_kib(),
            }
        )
    )


def vm_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["draft", "naive"], required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--threads", type=int, default=2)
    ns = parser.parse_args()
    ns.mode = ns.child
    child(ns)
