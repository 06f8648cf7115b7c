"""``portal worker`` execs the dramatiq CLI with the allocator environment of ``worker.environment``.

glibc reads ``MALLOC_ARENA_MAX`` once, when a process starts, and dramatiq forks its worker processes from
the one ``portal worker`` runs in: so the variable has to be in the environment the process was started
with. Read back from ``/proc`` for the main process (the same pid, after the exec) and its forked worker.
The broker URL points where nothing listens: the worker only has to start (it retries its connection),
and it must not consume the messages of the suite's live-broker tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PORTAL = Path(sys.executable).with_name("portal")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("4", "4")])
def test_portal_worker_starts_dramatiq_with_the_allocator_settings(
    tmp_path: Path, preset: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "MALLOC_"))}
    env |= {
        "PORTAL_ENV": "test",
        "PORTAL_BROKER_URL": "redis://127.0.0.1:9/0",  # the discard port: nothing answers
        "PORTAL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/portal.db",
        "PORTAL_STORAGE_URL": f"file://{tmp_path}/objects",
        "PORTAL_SECRET_KEY": "worker-command-test-" + "x" * 32,
    }
    if preset is not None:
        env["MALLOC_ARENA_MAX"] = preset  # an operator's own value is kept
    cmd = [str(PORTAL), "worker", "--processes", "1", "--threads", "1", "--no-scheduler"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None:
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            if b"dramatiq" in cmdline and (children := _children(proc.pid)):
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"portal worker exited with {proc.returncode}"
        assert children, "no dramatiq worker process within 60 s"
        assert cmdline[1:4] == [b"-m", b"dramatiq", b"worker.main"]
        for pid in (proc.pid, *children):
            environ = _environ(pid)
            assert environ["MALLOC_ARENA_MAX"] == expected
            # Big picture buffers are always mapped and unmapped (no threshold creeping up to their size).
            assert environ["MALLOC_MMAP_THRESHOLD_"] == str(1 << 20)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
