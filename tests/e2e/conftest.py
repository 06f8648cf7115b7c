"""End-to-end fixtures: a real ``portal serve`` on a fresh SQLite database, and Debian's Chromium.

The server runs as a subprocess in its own process group (stopping it stops whatever the server forked),
with the demo city seeded, on ``http://localhost:PORT`` (passkeys need a domain, not an IP:
recipes/passkeys-e2e.md).
Playwright's async API is used because pytest-asyncio runs the tests inside a session event loop,
where the sync API refuses to start. Never ``playwright install``: a missing browser skips locally
and fails on CI.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.e2e import csp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
# A phone of the size most wardens and staff carry, and a regulator's desk screen.
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
# The people using the portal read Chinese: the browser says so (Accept-Language, navigator.language).
BROWSER_LOCALE: dict[str, Any] = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is an e2e test (selected with ``-m e2e``), before ``-m`` filters."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server output)"
    return "\n".join(text.splitlines()[-lines:])


def _portal_script() -> Path:
    script = Path(sys.executable).parent / "portal"
    if not script.exists():
        pytest.fail(
            f"the `portal` script is not next to {sys.executable}: install the project (pip install -e .)"
        )
    return script


def _run(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(cmd[1:])}` exited with {done.returncode}:\n{_tail(log)}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole process group, SIGKILL whatever is left after a grace period."""
    pgid = proc.pid  # start_new_session=True: the server leads its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        proc.wait()
        return
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader, or it stays a zombie member of the group
        if not _group_alive(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=STOP_GRACE_S)


# The running server's environment and work directory, for tests that run `portal ...` commands against
# the same database (e.g. `portal verify-report`).
SERVER: dict[str, Any] = {}


@pytest.fixture(scope="session")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, demo-seeded portal on a free port; yields ``http://localhost:PORT``."""
    tmp = tmp_path_factory.mktemp("portal-e2e")
    log = tmp / "server.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_ENV="test",
        PORTAL_DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/portal.db",
        PORTAL_STORAGE_URL=f"file://{tmp}/objects",
        PORTAL_BROKER_URL="inprocess://",
        PORTAL_DEMO="true",
        PORTAL_HOST="127.0.0.1",
        PORTAL_PORT=str(port),
        PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
        PYTHONUNBUFFERED="1",
    )
    portal = str(_portal_script())
    # cwd is the temp dir: no stray .env, and var/sessions lands there rather than in the repo.
    _run([portal, "migrate"], env, tmp, log)
    _run([portal, "demo"], env, tmp, log)

    base_url = f"http://localhost:{port}"
    SERVER.update(env=env, cwd=tmp, portal=portal)
    out = log.open("ab")
    proc = subprocess.Popen(
        [portal, "serve"], env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`portal serve` exited with {proc.returncode} during start-up:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`portal serve` did not answer /health within {START_TIMEOUT_S:.0f} s:\n{_tail(log)}"
                )
            time.sleep(0.2)
        yield base_url
    finally:
        _stop(proc)
        out.close()


@pytest.fixture(scope="session")
def portal_command(portal_server: str) -> dict[str, Any]:
    """How to run ``portal ...`` against the server's database: ``portal``, ``env`` and ``cwd``."""
    return dict(SERVER)


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        why = (
            f"{CHROMIUM} is missing: apt-get install -y chromium fonts-noto-cjk (never `playwright install`)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def new_context(browser: Browser, base_url: str, shape: dict[str, Any]) -> BrowserContext:
    """A browser context (own cookies) in Chinese, whose pages report every CSP refusal to the test."""
    ctx = await browser.new_context(base_url=base_url, **BROWSER_LOCALE, **shape)
    ctx.set_default_timeout(10_000)
    ctx.set_default_navigation_timeout(15_000)
    await csp.watch(ctx)
    return ctx


@pytest.fixture(autouse=True)
def no_csp_refusals() -> Iterator[None]:
    """Fails a test in whose pages the Content-Security-Policy refused anything: every page must work
    under the policy, not just look as if it did."""
    csp.take()
    yield
    refused = csp.take()
    if refused:
        pytest.fail("the Content-Security-Policy refused:\n" + "\n".join(refused), pytrace=False)


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser, portal_server: str) -> AsyncIterator[Page]:
    """A fresh phone-sized page (own cookies) in a Chinese browser."""
    ctx = await new_context(browser, portal_server, PHONE)
    try:
        yield await ctx.new_page()
    finally:
        await ctx.close()


@pytest_asyncio.fixture(loop_scope="session")
async def desktop(browser: Browser, portal_server: str) -> AsyncIterator[Page]:
    """A fresh desktop-sized page (own cookies) in a Chinese browser."""
    ctx = await new_context(browser, portal_server, DESKTOP)
    try:
        yield await ctx.new_page()
    finally:
        await ctx.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """``var/`` at the repository root; CI keeps the screenshots as artefacts."""
    path = E2E_DIR.parents[1] / "var"
    path.mkdir(exist_ok=True)
    return path
