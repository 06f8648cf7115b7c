"""The worker side of bench/evidence.py: one child process per arm, running the real actor over pending rows.

python bench/_evidence_worker.py --child draft|naive --database-url URL --storage DIR --threads N --media T
"""

from __future__ import annotations

import argparse
import asyncio
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
    from sqlalchemy import Uuid, select

    from portal.core.outbox import OutboxMessage
    from portal.evidence import processing
    from portal.evidence.models import StoredObject
    from portal.evidence.services import PROCESS_TOPIC
    from portal.evidence.store import storage_from_settings, use_storage
    from worker.setup import setup

    settings = settings_for(args.database_url, Path(args.storage))
    if args.mode == "naive":
        processing.derive = naive_derive  # type: ignore[assignment]
    broker = setup(settings)
    use_storage(storage_from_settings(settings))
    from worker.actors import process_outbox

    async def pending() -> list[Any]:
        from portal.core.db import Database
        from portal.core.tenancy import Scope

        db = Database(settings)  # its own engine: the actors' one lives on their event loop
        async with db.session(Scope.system("bench")) as s:
            rows = await s.execute(
                select(OutboxMessage.id)
                .join(
                    StoredObject, StoredObject.id == OutboxMessage.payload["object_id"].as_string().cast(Uuid)
                )
                .where(OutboxMessage.topic == PROCESS_TOPIC, OutboxMessage.status == "pending")
                .where(StoredObject.media_type == args.media)
                .order_by(OutboxMessage.created_at)
            )
            ids = list(rows.scalars())
        await db.dispose()
        return ids

    ids = asyncio.run(pending())
    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=100)
    worker.start()
    # Warm-up (the actors' event loop, the engine's first connections), not timed.
    n_warm = args.threads if len(ids) > 2 * args.threads else 0
    warm, timed = ids[:n_warm], ids[n_warm:]
    for msg_id in warm:
        process_outbox.send(str(msg_id))
    broker.join("outbox", timeout=CHILD_TIMEOUT_S * 1000)
    rss_before = vm_kb("VmRSS")
    started = time.perf_counter()
    for msg_id in timed:
        process_outbox.send(str(msg_id))
    broker.join("outbox", timeout=CHILD_TIMEOUT_S * 1000)
    elapsed = time.perf_counter() - started
    worker.stop(timeout=10_000)
    # VmHWM: this process's own peak (ru_maxrss would include the parent's, kept across fork + exec).
    peak = vm_kb("VmHWM")
    print(
        json.dumps(
            {"photos": len(timed), "seconds": elapsed, "rss_before_kb": rss_before, "peak_rss_kb": peak}
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
    parser.add_argument("--media", default="image/jpeg")
    ns = parser.parse_args()
    ns.mode = ns.child
    child(ns)
