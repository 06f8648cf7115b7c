"""``make run`` as a newcomer sees it: ``portal migrate`` says what it did, ``portal serve`` prints the
sign-in guide last (no routine log lines after it) and Ctrl+C stops it cleanly (exit 0)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cli import PORTAL

pytestmark = pytest.mark.xdist_group("subprocess-server")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}",
        PORTAL_STORAGE_URL=f"file://{tmp_path / 'objects'}",
        PORTAL_SECRET_KEY="test-secret-key-" + "x" * 32,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _portal(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PORTAL), *args], env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    first = _portal(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("database created (schema revision ")
    again = _portal(tmp_path, "migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert "up to date" not in first.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_the_guide_last_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    assert _portal(tmp_path, "migrate").returncode == 0
    port = _free_port()
    env = _env(tmp_path, PORTAL_DEMO="true", PORTAL_HOST="127.0.0.1", PORTAL_PORT=str(port))
    proc = subprocess.Popen(
        [str(PORTAL), "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # blocks on the server's own output: no sleeping
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C"):
                break
        assert any("Demo sign-in" in line for line in lines), lines
        # Up and answering (the transport retries the connection, with backoff, while the server binds).
        transport = httpx.HTTPTransport(retries=8)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5, transport=transport) as client:
            assert client.get("/health").status_code in (200, 503)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    # Nothing routine after the guide: no job or sweep narration, no library INFO lines; only the access
    # line of the one request made here.
    after = [line for line in rest.splitlines() if line.strip() and "path=/health" not in line]
    assert not [line for line in after if "[info" in line or line.startswith("INFO")], after
