"""Rate limits per client address: sign-in, invitation links and public pages for signed-out visitors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import time_machine
import uvicorn
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.testing import AsyncTestClient

from portal.app import create_app
from portal.cli import proxy_options
from portal.config import Settings, SettingsError, load_settings
from portal.core import rate_limits
from tests.fixtures.brokers import require_broker
from tests.fixtures.factories import World
from tests.fixtures.web import csrf_token, limited_client, post_form, sign_in

TOO_MANY_ZH = "请求过于频繁，请稍候再试。"
TOO_MANY_EN = "Too many requests. Please wait a moment and try again."


async def test_too_many_sign_in_attempts_answer_429(settings: Settings, world: World) -> None:
    n = 3
    login = world.users["manager_a"].login
    async with limited_client(settings, rate_limit_signin_per_minute=n) as c:
        assert isinstance(c.app.stores.get(rate_limits.STORE_NAME), MemoryStore)
        with time_machine.travel(datetime.now(UTC), tick=True) as clock:
            for _ in range(n):
                assert (await sign_in(c, login)).status_code == 303
            refused = await sign_in(c, login)
            assert refused.status_code == 429
            assert TOO_MANY_ZH in refused.text and "Traceback" not in refused.text
            assert refused.headers["ratelimit-limit"] == str(n)
            # The JSON shape for passkey sign-in (fetch with Accept: application/json), in English.
            token = await csrf_token(c)
            passkey = await c.post(
                "/signin/passkey/options",
                headers={"x-csrftoken": token, "accept": "application/json", "accept-language": "en"},
            )
            assert passkey.status_code == 429 and passkey.json()["detail"] == TOO_MANY_EN
            # Reading pages is not a sign-in attempt; a minute later sign-in works again.
            assert (await c.get("/signin")).status_code == 200
            clock.shift(timedelta(seconds=61))
            assert (await sign_in(c, login)).status_code == 303


async def test_invitation_links_are_rate_limited(settings: Settings) -> None:
    n = 2
    async with limited_client(settings, rate_limit_signin_per_minute=n) as c:
        answers = [(await c.get(f"/invite/{uuid.uuid4().hex}")).status_code for _ in range(n + 1)]
        assert 429 not in answers[:n] and answers[n] == 429
        # A separate bucket: sign-in is still open.
        assert (await c.get("/signin")).status_code == 200


async def test_public_pages_are_limited_for_signed_out_visitors_only(
    settings: Settings, world: World
) -> None:
    n = 4
    async with limited_client(settings, rate_limit_public_per_minute=n, rate_limit_signin_per_minute=50) as c:
        answers = [(await c.get("/health")).status_code for _ in range(n + 1)]
        assert answers[:n] == [200] * n and answers[n] == 429
        limited = await c.get("/signin")
        assert limited.status_code == 429 and TOO_MANY_ZH in limited.text
        for _ in range(n + 1):  # static assets are never limited
            assert (await c.get("/static/css/portal.css")).status_code == 200
        await sign_in(c, world.users["manager_a"].login)  # its own bucket
        for _ in range(n + 2):  # signed in: public pages are not counted
            assert (await c.get("/")).status_code in (302, 307)
            assert (await c.get("/health")).status_code == 200


async def test_limits_are_counted_in_redis_when_configured(settings: Settings, world: World) -> None:
    import redis.asyncio as aioredis

    url = urlunsplit(urlsplit(require_broker("redis"))._replace(path="/14"))
    namespace = f"test_rate_limit_{uuid.uuid4().hex[:8]}"
    n = 2
    async with limited_client(settings, redis_url=url, rate_limit_signin_per_minute=n) as c:
        assert isinstance(c.app.stores.get(rate_limits.STORE_NAME), RedisStore)
        # A namespace of this test's own, so that parallel runs on this machine do not share counts.
        c.app.stores.register(
            rate_limits.STORE_NAME, RedisStore.with_client(url=url, namespace=namespace), allow_override=True
        )
        login = world.users["manager_a"].login
        for _ in range(n):
            assert (await sign_in(c, login)).status_code == 303
        assert (await sign_in(c, login)).status_code == 429
        r = aioredis.from_url(url)
        try:
            keys = [k.decode() async for k in r.scan_iter(f"{namespace}:*")]
            assert any("signin:" in k for k in keys), keys
            for k in keys:
                await r.delete(k)
        finally:
            await r.aclose()
        # Another "web process" on the same Redis shares the count.
        other = create_app(settings.model_copy(update={"demo": True, "redis_url": url}))
        other.stores.register(
            rate_limits.STORE_NAME, RedisStore.with_client(url=url, namespace=namespace), allow_override=True
        )
        async with AsyncTestClient(app=other, base_url="http://localhost.local") as c2:
            c2.follow_redirects = False
            for _ in range(n):
                assert (await post_form(c2, "/signin/demo", {"login": login})).status_code == 303
            assert (await post_form(c, "/signin/demo", {"login": login})).status_code == 429


async def test_the_bucket_checks_run_on_the_event_loop(settings: Settings) -> None:
    """Litestar runs a check that is a plain function in a worker thread: three thread hand-offs on every
    request, about a millisecond of CPU (bench/README.md). The checks are coroutines, and answer in place."""
    import inspect
    import threading

    from litestar.middleware.rate_limit import RateLimitMiddleware

    from portal.core.rate_limits import _config

    loop_thread = threading.get_ident()
    seen: list[int] = []

    def check(_request: Any) -> bool:
        seen.append(threading.get_ident())
        return True

    config = _config("test", 10, check)
    handler = config.check_throttle_handler
    assert handler is not None and inspect.iscoroutinefunction(handler)
    middleware = RateLimitMiddleware(app=None, config=config)  # type: ignore[arg-type]
    assert await middleware.should_check_request(object()) is True  # type: ignore[arg-type]
    assert seen == [loop_thread]
    for define in rate_limits.middleware(settings):
        assert inspect.iscoroutinefunction(define.kwargs["config"].check_throttle_handler)


# -- which address is the visitor's --------------------------------------------------------------------


def _echo_client_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        host = scope["client"][0] if scope.get("client") else ""
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": host.encode()})

    return app


async def _client_seen(settings: Settings, forwarded_for: str) -> str:
    """The client address an app sees behind uvicorn configured as ``portal serve`` configures it, for a
    connection from 127.0.0.1 that sends ``X-Forwarded-For``."""
    proxy_headers, allow = proxy_options(settings)
    config = uvicorn.Config(
        _echo_client_app(), lifespan="off", proxy_headers=proxy_headers, forwarded_allow_ips=allow
    )
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
        return (await c.get("/", headers={"X-Forwarded-For": forwarded_for})).text


async def test_forwarded_for_counts_only_from_a_trusted_proxy(settings: Settings) -> None:
    """By default nobody's X-Forwarded-For is believed, not even a loopback connection's (uvicorn's own
    default believes 127.0.0.1): rotating the header cannot sidestep a per-address limit."""
    assert settings.trusted_proxies == ""
    assert await _client_seen(settings, "203.0.113.9") == "127.0.0.1"
    behind_proxy = settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    assert await _client_seen(behind_proxy, "203.0.113.9") == "203.0.113.9"
    elsewhere = settings.model_copy(update={"trusted_proxies": "10.0.0.2"})
    assert await _client_seen(elsewhere, "203.0.113.9") == "127.0.0.1"


def test_trusted_proxies_are_checked_at_start_up(settings: Settings) -> None:
    assert load_settings(trusted_proxies=" 10.0.0.2, 10.1.0.0/16 ").trusted_proxies == "10.0.0.2,10.1.0.0/16"
    with pytest.raises(SettingsError, match="PORTAL_TRUSTED_PROXIES: must be comma-separated IP"):
        load_settings(trusted_proxies="proxy.example")
