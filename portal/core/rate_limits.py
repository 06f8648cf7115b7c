"""Rate limits per client address (Litestar's ``RateLimitConfig``), in Redis when ``PORTAL_REDIS_URL`` is
set (shared by every web process), else in memory (per process).

Three buckets, each counted per minute and per address:

* **sign-in**: POSTs under ``/signin/`` (demo and passkey sign-in) and ``/auth/passkey/``
  (``PORTAL_RATE_LIMIT_SIGNIN_PER_MINUTE``);
* **invitations**: anything under ``/invite/`` (the same number, a bucket of its own);
* **public**: every other route declared ``access.public()`` when the visitor is not signed in
  (``PORTAL_RATE_LIMIT_PUBLIC_PER_MINUTE``); static assets are declared ``public(throttle=False)``.

A request over the limit answers 429 with the translated "Too many requests" page (or JSON for the API).
Behind a reverse proxy the client address must be the visitor's, not the proxy's: run the server with
its forwarded-headers option restricted to the proxy's address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

from portal.config import Settings
from portal.core.route_access import access_of

STORE_NAME = "rate_limit"
SIGNIN_PREFIXES = ("/signin/", "/auth/passkey/")
INVITE_PREFIXES = ("/invite/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def store(settings: Settings) -> Store:
    if settings.redis_url:
        return RedisStore.with_client(url=settings.redis_url, namespace="portal_rate_limit")
    return MemoryStore()


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def is_signin(request: Request[Any, Any, Any]) -> bool:
    return request.method not in SAFE_METHODS and request.url.path.startswith(SIGNIN_PREFIXES)


def is_invite(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(INVITE_PREFIXES)


def is_public_visit(request: Request[Any, Any, Any]) -> bool:
    """A signed-out visit to a public route outside the two buckets above."""
    if is_signin(request) or is_invite(request):
        return False
    rule = access_of(request.scope["route_handler"])
    if rule is None or not rule.is_public or not rule.throttle:
        return False
    session = request.scope.get("session")
    return not (isinstance(session, dict) and session.get("uid"))


def _config(bucket: str, per_minute: int, check: Callable[[Request[Any, Any, Any]], bool]) -> RateLimitConfig:
    async def applies(request: Request[Any, Any, Any]) -> bool:
        return check(request)

    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        # A coroutine: Litestar runs a plain function in a worker thread, three thread hops per request.
        check_throttle_handler=applies,
        identifier_for_request=lambda request: f"{bucket}:{_address(request)}",
        store=STORE_NAME,
    )


def middleware(settings: Settings) -> list[DefineMiddleware]:
    """Put these after the session middleware (the public bucket skips signed-in people)."""
    return [
        _config("signin", settings.rate_limit_signin_per_minute, is_signin).middleware,
        _config("invite", settings.rate_limit_signin_per_minute, is_invite).middleware,
        _config("public", settings.rate_limit_public_per_minute, is_public_visit).middleware,
    ]
