"""The portal over HTTP, for ``bench/tenancy.py``: one web process (granian or uvicorn) started and stopped
here, people signed in through the demo sign-in, and a bounded load (wrk, or ``_load.py``'s Python one)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _city
import _load

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")  # not the tests' 15, not 0
SECRET = "bench-tenancy-secret-" + "x" * 32


# Litestar's server-side session middleware stores an empty session (12 h TTL) for every request that
# arrives without a session cookie, even /health: the ids of the ones this run causes, to delete them.
ANONYMOUS_SESSIONS: list[str] = []


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load()}] {msg}", flush=True)


# -- 3./4. the app over HTTP ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One web process (granian or uvicorn) serving portal.asgi:app, started and stopped by this script."""

    def __init__(self, kind: str, db: str, tmp: Path, app: str = "portal.asgi:app") -> None:
        self.kind = kind
        self.app = app
        self.port = free_port()
        self.log_path = tmp / f"{kind}-{app.partition(':')[0]}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
            "PORTAL_ENV": "production",  # as deployed (see inprocess_ladder)
            "PORTAL_DATABASE_URL": _city.url("portal_app", db),
            "PORTAL_MIGRATION_DATABASE_URL": _city.url("portal_owner", db),
            "PORTAL_REDIS_URL": REDIS_URL,
            "PORTAL_DEMO": "true",
            "PORTAL_LOG_LEVEL": "WARNING",
            "PORTAL_BROKER_URL": "inprocess://",
            "PORTAL_SCHEDULER": "false",
            # The load signs in hundreds of people from one loopback address: lift the per-address limits.
            "PORTAL_RATE_LIMIT_SIGNIN_PER_MINUTE": "100000",
            "PORTAL_RATE_LIMIT_PUBLIC_PER_MINUTE": "100000",
            "PORTAL_STORAGE_URL": f"file://{tmp / 'objects'}",
            "PORTAL_SECRET_KEY": SECRET,
            "PORTAL_HOST": "127.0.0.1",
            "PORTAL_PORT": str(self.port),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.kind == "granian":
            return [
                str(VENV_BIN / "granian"),
                "--interface",
                "asgi",
                "--workers",
                "1",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-ws",
                "--log-level",
                "warning",
                "--no-access-log",
                self.app,
            ]
        return [
            str(VENV_BIN / "uvicorn"),
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    def start(self) -> None:
        log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # its own process group: stop() ends exactly this server
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.tail()}")
            conn = _load.Connection(self.port, timeout=5)
            try:
                resp = await conn.request("GET", "/health")
                ANONYMOUS_SESSIONS.append(resp.cookies().get("portal_session", ""))
                if resp.status == 200:
                    return
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                pass
            finally:
                await conn.close()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.kind} not ready after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@dataclass
class Principal:
    tenant: _city.BenchTenant
    member: _city.Member
    session_id: str
    csrf: str

    @property
    def cookie(self) -> str:
        """Both cookies, as a browser sends them after signing in."""
        return f"portal_session={self.session_id}; portal_csrf={self.csrf}"


async def csrf_cookie(port: int) -> str:
    """Any safe request hands out the CSRF cookie. (``GET /signin`` would too, but in demo mode it lists
    every user with their roles, one query set per user: at 30,000 users that page takes minutes.)"""
    conn = _load.Connection(port)
    try:
        resp = await conn.request("GET", "/")
    finally:
        await conn.close()
    ANONYMOUS_SESSIONS.append(resp.cookies().get("portal_session", ""))
    token = resp.cookies().get("portal_csrf")
    if not token:
        raise RuntimeError(f"no portal_csrf cookie from GET / ({resp.status})")
    return token


async def sign_in_many(port: int, people: list[tuple[_city.BenchTenant, _city.Member]]) -> list[Principal]:
    token = await csrf_cookie(port)
    queue = iter(people)
    out: list[Principal] = []

    async def worker() -> None:
        conn = _load.Connection(port)
        try:
            for tenant, member in queue:
                body = urllib.parse.urlencode({"login": member.login}).encode()
                resp = await conn.request(
                    "POST",
                    "/signin/demo",
                    {
                        "Cookie": f"portal_csrf={token}",
                        "x-csrftoken": token,
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                    body,
                )
                sid = resp.cookies().get("portal_session")
                if resp.status != 303 or not sid:
                    raise RuntimeError(f"demo sign-in of {member.login} answered {resp.status}")
                if resp.header("location") != f"/t/{tenant.id}":
                    raise RuntimeError(f"{member.login} landed on {resp.header('location')}")
                out.append(Principal(tenant, member, sid, token))
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(4)))
    return out


def redis_delete(keys: list[str]) -> None:
    """Delete this run's server-side sessions from Redis (they would otherwise live 12 hours)."""
    if not keys:
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(*keys)
    finally:
        client.close()


def forget_sessions(principals: list[Principal]) -> None:
    redis_delete([f"portal_sessions:{p.session_id}" for p in principals])


def drive(port: int, plan: list[tuple[str, str]], *, conns: int, seconds: float) -> dict:
    if _load.wrk_path():
        return _load.run_wrk(port, plan, conns=conns, seconds=seconds)
    return _load.run_python_load(port, plan, conns=conns, seconds=seconds)
