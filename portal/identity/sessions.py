"""Server-side sessions: where they live, how long they last, how one starts and how all of them end.

* **Store.** Redis when ``PORTAL_REDIS_URL`` is set (several web processes share it), else the
  database (:class:`~portal.identity.session_store.DatabaseStore`, the embedded shape). The cookie
  (``portal_session``) holds only a random id: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` outside local
  development (production, or an https public URL).
* **Idle timeout** (``PORTAL_SESSION_IDLE_MINUTES``): the store entry expires that long after the last
  request; each request renews it. An unchanged session is re-saved at most once per
  :attr:`SessionPolicy.renew_every` (a minute), so a page view costs one store read, not a write too.
  The cookie lives up to the absolute timeout, so that a visit after an idle timeout still names its
  (gone) session and the person is told that it ended.
* **Absolute timeout** (``PORTAL_SESSION_ABSOLUTE_HOURS``): counted from ``signed_in_at``, never renewed.
* **Sign out everywhere**: :func:`sign_out_everywhere` sets ``User.sessions_valid_after``; every
  session that started earlier is refused by :func:`session_refused` (``provide_principal`` calls it on
  every request, then clears the session).
* **Starting a session**: :func:`start_session` is the only way in (demo sign-in, passkeys, invitations).
  It drops whatever the session held and gives it a new id, so an id planted before sign-in is worthless.

The middleware writes the session after the request's database transaction has committed (the commit
happens when the response starts; the write right after, before the body), so on SQLite, which has one
writer at a time, the request and the session store never wait for each other.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.serialization import decode_json, encode_json
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope as TenancyScope
from portal.core.tenancy import scope_of, set_scope
from portal.identity.principal import Context

if TYPE_CHECKING:
    from portal.models.identity import User

log = structlog.get_logger("portal.sessions")

COOKIE = "portal_session"
STORE_NAME = "sessions"
# Bookkeeping kept in the stored session, not for handlers: when it was last written (epoch seconds).
_RENEWED = "_renewed"
# Per-request flags in ``scope["state"]``.
ROTATE = "portal.session.rotate"  # start_session: give the session a new id
MISSING = "portal.session.missing"  # the cookie named a session the store no longer has (idle timeout)
ENDED = "portal.session.ended"  # provide_principal refused the session (absolute timeout, signed out)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta
    secure: bool
    renew_every: timedelta = timedelta(minutes=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        idle = timedelta(minutes=settings.session_idle_minutes)
        return cls(
            idle=idle,
            absolute=timedelta(hours=settings.session_absolute_hours),
            secure=secure_cookies(settings),
            renew_every=min(timedelta(minutes=1), idle / 10),
        )


def secure_cookies(settings: Settings) -> bool:
    """Cookies are ``Secure`` in production, and whenever people reach the portal over https."""
    return settings.env == "production" or settings.base_url.startswith("https://")


def session_store(settings: Settings, db: Database) -> Store:
    """Redis when configured (several web processes share it); else the database (embedded shape)."""
    if settings.redis_url:
        return RedisStore.with_client(url=settings.redis_url, namespace="portal_sessions")
    from portal.identity.session_store import DatabaseStore

    return DatabaseStore(db)


# -- rules (no HTTP) ---------------------------------------------------------------------------------


def started_at(data: Mapping[str, Any]) -> float | None:
    """``signed_in_at`` (epoch seconds) of a session, or ``None`` if it has none."""
    value = data.get("signed_in_at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def session_refused(
    data: Mapping[str, Any], *, absolute: timedelta, valid_after: datetime | None, now: float | None = None
) -> bool:
    """True when a signed-in session must end: past its absolute timeout, started before the person's
    ``sessions_valid_after`` ("sign out everywhere", a revoked passkey), or without a start time at all."""
    started = started_at(data)
    if started is None:
        return True
    now = time.time() if now is None else now
    if now - started >= absolute.total_seconds():
        return True
    return valid_after is not None and started < valid_after.timestamp()


async def sign_out_everywhere(session: AsyncSession, user_id: uuid.UUID) -> datetime:
    """End every session of this person, on every device (this one included); audited."""
    from portal.models.identity import User

    user = await session.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    now = datetime.now(UTC)
    user.sessions_valid_after = now
    if scope_of(session) is None:  # a platform admin's context has no tenant scope; the entry needs one
        await set_scope(session, TenancyScope.tenants(()))
    await session.flush()
    await audit.record(
        session,
        "auth.signout_everywhere",
        tenant_id=None,
        object_type="user",
        object_id=user.id,
        detail={"sessions_valid_after": now.isoformat()},
    )
    return now


# -- web glue ------------------------------------------------------------------------------------------


def _state(connection: ASGIConnection[Any, Any, Any, Any] | Scope) -> dict[str, Any]:
    scope = connection.scope if isinstance(connection, ASGIConnection) else connection
    return scope.setdefault("state", {})


def start_session(
    request: ASGIConnection[Any, Any, Any, Any],
    user: User,
    contexts: list[Context],
    method: str,
    ctx: str | None = None,
) -> Context | None:
    """Sign ``user`` in: a fresh session (new id, nothing carried over) in the context whose token is
    ``ctx``, else the first of ``contexts``. ``method`` says how (``passkey``, ``demo``, ``invitation``)
    and is shown on the account's sessions page. Returns the chosen context."""
    chosen = next((c for c in contexts if ctx and c.token == ctx), contexts[0] if contexts else None)
    request.clear_session()
    request.set_session(
        {
            "uid": str(user.id),
            "ctx": chosen.token if chosen else "",
            "locale": user.locale,
            "signed_in_at": time.time(),
            "method": method,
        }
    )
    _state(request)[ROTATE] = True
    return chosen


def signed_in(scope: Scope) -> bool:
    """The request's session holds a person, as the handler left it (a sign-in's answer counts, a sign-out's
    does not). Static assets have no session."""
    session = scope.get("session")
    return isinstance(session, dict) and bool(session.get("uid"))


def end_session(request: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Forget a refused session; pages then send the person to /signin with a notice, the API says 401."""
    request.clear_session()
    _state(request)[ENDED] = True


def session_ended(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Did this request arrive with a session that has ended (timed out or signed out elsewhere)?"""
    state = _state(connection)
    return bool(state.get(ENDED) or state.get(MISSING))


_SESSION_ID = re.compile(r"[0-9a-f]{64}")  # secrets.token_hex(32)


def _static_asset(scope: Scope) -> bool:
    return str(scope["path"]).startswith(("/static/", "/vendor/"))


class SessionMiddleware(ASGIMiddleware):
    """Loads the session named by the cookie and saves it after the response has started.

    Litestar's own server-side session middleware writes on every response (an empty session too), keeps a
    session's id across sign-in, and writes before the request's transaction commits; this one writes only
    sessions that hold something and changed (or are due for renewal), rotates the id on sign-in, and
    writes after the commit.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, policy: SessionPolicy, store: str = STORE_NAME) -> None:
        self.policy = policy
        self.store_name = store
        # Static assets need no session (and should not cost a store read each).
        self.should_bypass_for_scope = _static_asset

    def _cookie(self, value: str, *, clear: bool = False) -> str:
        cookie = Cookie(
            key=COOKIE,
            value="null" if clear else value,
            path="/",
            # The store enforces the idle timeout; the cookie outlives it (up to the absolute timeout) so
            # that a visit after an idle timeout can be told "your session has ended".
            max_age=0 if clear else int(self.policy.absolute.total_seconds()),
            expires=0 if clear else None,
            secure=self.policy.secure,
            httponly=True,
            samesite="lax",
        )
        return cookie.to_header(header="")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, receive=receive, send=send)
        store = scope["litestar_app"].stores.get(self.store_name)
        cookie_id = connection.cookies.get(COOKIE)
        if cookie_id is not None and not _SESSION_ID.fullmatch(cookie_id):
            cookie_id = None  # "null" after sign-out, or not an id we made: as if there were no cookie
        raw: bytes | None = None
        if cookie_id:
            raw = await store.get(cookie_id)
            if raw is None:
                _state(scope)[MISSING] = True
        loaded: dict[str, Any] = {}
        if raw is not None:
            try:
                loaded = dict(decode_json(raw))
            except Exception:  # a corrupt entry is a missing one
                log.warning("session unreadable", exc_info=True)
                raw = None
        scope["session"] = loaded

        async def send_wrapper(message: Message) -> None:
            if message["type"] != "http.response.start":
                await send(message)
                return
            write = self._plan(scope, cookie_id, raw)
            if write is not None:
                MutableScopeHeaders.from_message(message).add("Set-Cookie", write[0])
            # The request's transaction commits as this message goes out (advanced-alchemy's before_send).
            await send(message)
            if write is not None:
                try:
                    await write[1](store)
                except Exception:
                    log.error("session not saved", path=scope.get("path"), exc_info=True)

        await next_app(scope, receive, send_wrapper)

    def _plan(self, scope: Scope, cookie_id: str | None, raw: bytes | None) -> tuple[str, Any] | None:
        """(Set-Cookie header, store operation) for this response, or ``None`` when nothing changes."""
        session = scope.get("session")
        data = session if isinstance(session, dict) else {}  # Litestar's ``Empty`` after clear_session()
        rotate = bool(_state(scope).get(ROTATE))
        if not data:
            if not cookie_id:
                return None
            old = cookie_id

            async def forget(store: Store) -> None:
                await store.delete(old)

            return self._cookie("", clear=True), forget
        now = time.time()
        if not rotate and cookie_id and raw is not None:
            renewed = data.get(_RENEWED)
            if (
                isinstance(renewed, int | float)
                and now - renewed < self.policy.renew_every.total_seconds()
                and encode_json(data) == raw
            ):
                return None  # unchanged and recently renewed: no write, no cookie
        session_id = cookie_id if (cookie_id and not rotate) else secrets.token_hex(32)
        previous = cookie_id if (cookie_id and session_id != cookie_id) else None
        body = encode_json({**data, _RENEWED: now})
        expires_in = int(self.policy.idle.total_seconds())

        async def save(store: Store) -> None:
            await store.set(session_id, body, expires_in=expires_in)
            if previous is not None:
                await store.delete(previous)

        return self._cookie(session_id), save
