"""Evidence benchmark: upload → complete → process throughput and worker memory, draft vs a naive baseline.

    .venv/bin/python bench/evidence.py [--photos 120] [--heic 3] [--threads 2] [--write/--no-write]

Fresh PostgreSQL database (app role under RLS) and file:// storage; 12-megapixel JPEGs with EXIF GPS (copies
made unique by a comment segment, so de-duplication does not kick in) and a few HEIC. Web stage in this
process (slot, browser POST, completion over ASGI); worker stage in a fresh child process per arm (the real
``worker.setup`` wiring and a ``dramatiq.Worker``, started with the environment ``portal worker`` gives its
processes, ``worker.environment``): *draft* is the portal's code, *naive* a full decode + LANCZOS on the
same rows reset to pending (not held to one picture at a time: it runs as many as there are threads). The
parent finds the rows and hands their ids to the child, whose peak RSS (VmHWM) is then the worker's alone.
Writes ``bench/results-evidence.md``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results-evidence.md"
SECRET = "bench-evidence-secret-" + "x" * 32
CHILD_TIMEOUT_S = 150


def log(msg: str) -> None:
    one, five, _ = os.getloadavg()
    print(f"[{datetime.now():%H:%M:%S} load {one:.2f}/{five:.2f}] {msg}", flush=True)


def settings_for(database_url: str, storage: Path, owner_url: str | None = None) -> Any:
    from portal.config import load_settings

    return load_settings(
        env="test",
        database_url=database_url,
        migration_database_url=owner_url,
        storage_url=f"file://{storage}",
        broker_url="inprocess://",
        secret_key=SECRET,
        scheduler=False,
        demo=True,
        log_level="WARNING",
        evidence_quota_mb=100_000,
        evidence_max_upload_mb=40,
    )


# -- photos ------------------------------------------------------------------------------------------


def make_photos(count: int, heic: int) -> list[tuple[bytes, str]]:
    from tests.evidence import images

    bases = [images.jpeg(4000, 3000, seed=s, orientation=(1, 6)[s % 2]) for s in range(4)]
    photos = []
    for i in range(count):
        base = bases[i % len(bases)]
        note = f"bench photo {i}".encode()
        # A COM segment right after SOI: unique bytes, identical decoding work.
        photos.append(
            (base[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + base[2:], "image/jpeg")
        )
    if heic:  # HEVC encoding is slow: one picture, made unique per copy by trailing bytes
        one = images.encoded("HEIF", 4000, 3000, quality=50, exif=images.exif().tobytes())
        photos += [(one + f"\0{i}".encode(), "image/heic") for i in range(heic)]
    return photos


# -- web stage -----------------------------------------------------------------------------------------


async def seed(settings: Any) -> tuple[str, str]:
    from portal import registry
    from portal.core.db import Database
    from portal.core.tenancy import Scope
    from portal.models.tenants import JurisdictionLevel, MemberRole, TenantKind, UnitCategory
    from portal.tenants import services as ts
    from tests.fixtures.factories import unique_uscc

    registry.install()

    db = Database(settings)
    async with db.session(Scope.system("bench seed")) as s:
        node = None
        for code, level in (
            ("BE1", JurisdictionLevel.CITY),
            ("BE2", JurisdictionLevel.DISTRICT),
            ("BE3", JurisdictionLevel.STREET),
        ):
            node = await ts.add_jurisdiction(
                s, code=code, level=level, name_zh=code, name_en=code, parent=node
            )
        assert node is not None
        tenant = await ts.register_tenant(
            s,
            code="BE001",
            kind=TenantKind.UNIT,
            category=UnitCategory.GENERAL,
            name_zh="基准单位",
            name_en="Bench unit",
            address="基准路1号",
            jurisdiction=node,
            uscc=unique_uscc(),
        )
        user = await ts.create_user(s, login="bench.manager", display_name="基准管理人")
        await ts.add_member(s, tenant, user, MemberRole.MANAGER)
    await db.dispose()
    return str(tenant.id), user.login


async def web_stage(settings: Any, photos: list[tuple[bytes, str]]) -> dict[str, float]:
    import uuid

    from litestar.testing import AsyncTestClient

    from portal.app import create_app
    from portal.core import outbox
    from tests.fixtures.web import csrf_token, sign_in

    tenant_id, login = await seed(settings)
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://localhost.local") as client:
        outbox.set_dispatcher(None)  # rows stay pending for the worker child
        client.follow_redirects = False
        await sign_in(client, login)
        headers = {"x-csrftoken": await csrf_token(client), "accept": "application/json"}
        started = time.perf_counter()
        for data, media_type in photos:
            cid = str(uuid.uuid4())
            body = {
                "client_id": cid,
                "owner_type": "tenant",
                "owner_id": tenant_id,
                "content_type": media_type,
                "size": len(data),
                "filename": "bench.jpg",
            }
            slot = await client.post("/evidence/slots", json=body, headers=headers)
            assert slot.status_code == 200, slot.text
            up = slot.json()["upload"]
            sent = await client.post(up["url"], data=up["fields"], files={"file": ("p", data, media_type)})
            assert sent.status_code == 204, sent.text
            done = await client.post(f"/evidence/slots/{cid}/complete", headers=headers)
            assert done.status_code == 200, done.text
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "per_min": len(photos) / elapsed * 60}


# -- worker stage (child process) ----------------------------------------------------------------------


def run_child(mode: str, database_url: str, storage: Path, threads: int, ids: list[str]) -> dict[str, float]:
    from worker.environment import worker_environ

    cmd = [
        sys.executable,
        str(Path(__file__).with_name("_evidence_worker.py")),
        "--child",
        mode,
        "--database-url",
        database_url,
        "--storage",
        str(storage),
        "--threads",
        str(threads),
    ]
    out = subprocess.run(
        cmd,
        input="\n".join(ids),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S + 30,
        cwd=ROOT,
        # What `portal worker` execs dramatiq with (allocator settings): measured as deployed.
        env=worker_environ(os.environ),
    )
    if out.returncode != 0:
        raise SystemExit(f"worker child ({mode}) failed:\n{out.stderr[-4000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def pending_ids(name: str, media_type: str) -> list[str]:
    """The pending ``evidence.process`` messages for ``media_type``, oldest first (as the superuser)."""
    from _city import superuser

    async with superuser(name) as conn:
        rows = await conn.fetch(
            "select m.id from outbox_message m join evidence_object o"
            " on o.id = (m.payload->>'object_id')::uuid"
            " where m.topic = 'evidence.process' and m.status = 'pending' and o.media_type = $1"
            " order by m.created_at",
            media_type,
        )
    return [str(row["id"]) for row in rows]


async def reset_rows(name: str) -> int:
    """Back to pending, for the naive arm. As the superuser: evidence_object is under FORCE'd RLS."""
    from _city import superuser

    async with superuser(name) as conn:
        status = await conn.execute(
            "update outbox_message m set status = 'pending', processed_at = null from evidence_object o"
            " where m.topic = 'evidence.process' and o.id = (m.payload->>'object_id')::uuid"
            " and o.media_type = 'image/jpeg'"
        )
        await conn.execute(
            "update evidence_object set processing = 'pending' where media_type = 'image/jpeg'"
        )
    return int(status.split()[-1])


def single_thread_ms(photo: bytes, fn: Any, rounds: int = 5) -> float:
    fn(photo)
    started = time.process_time()
    for _ in range(rounds):
        fn(photo)
    return (time.process_time() - started) / rounds * 1000


# -- main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--heic", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    import _city
    from _evidence_worker import naive_derive

    from portal.evidence import processing

    deadline = time.monotonic() + 180
    log("generating photos")
    photos = make_photos(args.photos, args.heic)
    draft_ms = single_thread_ms(photos[0][0], processing.derive)
    naive_ms = single_thread_ms(photos[0][0], naive_derive)
    name = _city.create_database()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
            storage = Path(tmp) / "objects"
            app_url, owner_url = _city.url("portal_app", name), _city.url("portal_owner", name)
            settings = settings_for(app_url, storage, owner_url)
            log(f"web stage: {len(photos)} photos (slot, browser POST, completion)")
            web = asyncio.run(web_stage(settings, photos))
            log(f"worker stage (draft, {args.threads} threads)")
            jpeg_ids = asyncio.run(pending_ids(name, "image/jpeg"))
            draft = run_child("draft", app_url, storage, args.threads, jpeg_ids)
            heic = None
            if args.heic:
                heic_ids = asyncio.run(pending_ids(name, "image/heic"))
                heic = run_child("draft", app_url, storage, args.threads, heic_ids)
            asyncio.run(reset_rows(name))
            if time.monotonic() > deadline - 60:
                raise SystemExit("out of time budget before the naive arm")
            log(f"worker stage (naive, {args.threads} threads)")
            naive = run_child("naive", app_url, storage, args.threads, jpeg_ids)
    finally:
        _city.drop_database(name)

    mib = 1024.0
    rate = draft["photos"] / draft["seconds"] * 60
    naive_rate = naive["photos"] / naive["seconds"] * 60
    rows = [
        ("worker throughput, draft mode (photos/min per process)", "≥ 900", f"{rate:,.0f}", rate >= 900),
        (
            "worker peak RSS, draft mode",
            "< 150 MiB",
            f"{draft['peak_rss_kb'] / mib:.0f} MiB",
            draft["peak_rss_kb"] / mib < 150,
        ),
        ("worker throughput, naive full decode + LANCZOS", "—", f"{naive_rate:,.0f}", None),
        ("worker peak RSS, naive", "—", f"{naive['peak_rss_kb'] / mib:.0f} MiB", None),
        (
            "speed-up draft vs naive (same rows, same run)",
            "≥ 3×",
            f"{rate / naive_rate:.1f}×",
            rate / naive_rate >= 3,
        ),
        (
            "CPU per 12 MP JPEG, one thread: draft / naive",
            "—",
            f"{draft_ms:.0f} ms / {naive_ms:.0f} ms",
            None,
        ),
        (
            "worker throughput, 12 MP HEIC (full decode: no draft mode for HEVC)",
            "—",
            f"{heic['photos'] / heic['seconds'] * 60:,.0f}" if heic and heic["photos"] else "—",
            None,
        ),
        (
            "worker peak RSS, 12 MP HEIC arm",
            "< 150 MiB",
            f"{heic['peak_rss_kb'] / mib:.0f} MiB" if heic else "—",
            heic["peak_rss_kb"] / mib < 150 if heic else None,
        ),
        (
            "peak RSS of a HEIC decoder child (a 4000×3000 picture decoded whole, for ~0.5 s)",
            "—",
            f"{heic['heic_child_peak_kb'] / mib:.0f} MiB" if heic else "—",
            None,
        ),
        (
            "web stage: slot + upload + completion (photos/min, 1 process)",
            "—",
            f"{web['per_min']:,.0f}",
            None,
        ),
        (
            "worker RSS after start-up (imports, wiring, threads; before the first photo)",
            "—",
            f"{draft['rss_started_kb'] / mib:.0f} MiB",
            None,
        ),
        (
            "worker RSS after the warm-up photos (engine, connections, one photo's buffers kept)",
            "—",
            f"{draft['rss_before_kb'] / mib:.0f} MiB",
            None,
        ),
    ]
    table = ["| metric | target | measured | ok |", "|---|---|---|---|"]
    table += [
        f"| {m} | {t} | {v} | {'' if ok is None else ('yes' if ok else '**no**')} |" for m, t, v, ok in rows
    ]
    env = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} CPUs · "
        f"Python {platform.python_version()} · Pillow {version('pillow')} · "
        f"pillow-heif {version('pillow-heif')} · PostgreSQL · file:// storage · "
        f"{len(photos) - args.heic} JPEG + {args.heic} HEIC, 4000×3000 · {args.threads} worker threads · "
        f"load {os.getloadavg()[0]:.2f}"
    )
    text = "\n".join(table)
    print(text)
    print(env)
    if args.write:
        RESULTS.write_text(
            f"# Evidence benchmark\n\n{env}\n\n{text}\n\nRun: `.venv/bin/python bench/evidence.py`\n"
        )
    if any(ok is False for *_x, ok in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
