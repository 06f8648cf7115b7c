"""Server-side sessions: stored in the database (or Redis), idle and absolute timeouts, a new id at every
sign-in, and "sign out everywhere" ending the sessions of every device."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import time_machine
from litestar.stores.redis import RedisStore
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from portal.app import create_app
from portal.config import Settings
from portal.core import i18n
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.identity.session_store import DatabaseStore
from portal.identity.sessions import COOKIE, SessionPolicy, session_refused
from portal.models.audit import AuditEntry
from portal.models.identity import SessionRecord, User
from tests.fixtures.brokers import require_broker
from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in

SESSION_KEYS = {"uid", "ctx", "locale", "signed_in_at", "method", "_renewed"}


def zh(message: str) -> str:
    """The Chinese page text of ``message`` (the English msgid until the catalogue has it)."""
    return i18n.translations("zh_CN").gettext(message)


@asynccontextmanager
async def app_client(
    settings: Settings, base_url: str = "http://localhost.local", **updates: Any
) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings.model_copy(update={"demo": True, **updates}))
    async with AsyncTestClient(app=app, base_url=base_url) as c:
        c.follow_redirects = False
        yield c


async def stored(database: Database, key: str) -> SessionRecord | None:
    async with database.session(Scope.tenants(())) as s:
        return (await s.execute(select(SessionRecord).where(SessionRecord.key == key))).scalar_one_or_none()


def session_cookie(response: httpx.Response) -> str | None:
    """The portal_session Set-Cookie header of a response, if any."""
    return next(
        (h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")),
        None,
    )


def notice_redirect(response: httpx.Response, path: str) -> bool:
    return (
        response.status_code == 302
        and response.headers["location"] == f"/signin?next={path}&notice=session_ended"
    )


# -- where sessions live ---------------------------------------------------------------------------------


async def test_session_lives_in_the_database_table(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    anonymous = await client.get("/signin")
    assert anonymous.status_code == 200 and session_cookie(anonymous) is None  # no session, no row
    manager = world.users["manager_a"]
    before = time.time()
    signed = await sign_in(client, manager.login)
    header = session_cookie(signed)
    assert header is not None
    assert (
        "HttpOnly" in header and "SameSite=lax" in header.replace("Lax", "lax") and "Max-Age=43200" in header
    )
    assert "Secure" not in header  # local development over http
    key = client.cookies[COOKIE]
    row = await stored(database, key)
    assert row is not None and row.expires_at is not None
    data = json.loads(row.value)
    assert set(data) == SESSION_KEYS
    assert data["uid"] == str(manager.id) and data["method"] == "demo"
    assert data["ctx"] == f"member:{world.tenants['a'].id}"
    assert before <= data["signed_in_at"] <= time.time()
    left = (row.expires_at - datetime.now(UTC)).total_seconds()
    assert 29 * 60 < left <= 30 * 60
    assert isinstance(client.app.stores.get("sessions"), DatabaseStore)


async def test_a_new_session_id_at_every_sign_in(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    planted = "ab" * 32  # an id an attacker made the victim's browser carry before signing in
    client.cookies.set(COOKIE, planted, domain="localhost.local")
    assert (await client.get("/switch")).headers["location"] == "/signin?next=/switch&notice=session_ended"
    await sign_in(client, world.users["manager_a"].login)
    first = client.cookies[COOKIE]
    assert first != planted and await stored(database, planted) is None
    client.cookies.set(COOKIE, "x" * 300, domain="localhost.local")  # not an id of ours: no cookie at all
    assert (await client.get("/switch")).headers["location"] == "/signin?next=/switch"
    await sign_in(client, world.users["manager_a"].login)
    first = client.cookies[COOKIE]
    await sign_in(client, world.users["both"].login)  # the same browser, someone else signs in
    second = client.cookies[COOKIE]
    assert second != first
    assert await stored(database, first) is None  # the old id is worthless now
    row = await stored(database, second)
    assert row is not None and json.loads(row.value)["uid"] == str(world.users["both"].id)


async def test_switching_role_is_saved_at_once(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    await sign_in(client, world.users["both"].login, ctx=f"member:{a.id}")
    key = client.cookies[COOKIE]
    await post_form(client, "/switch", {"ctx": f"member:{b.id}"})
    row = await stored(database, key)
    assert row is not None and json.loads(row.value)["ctx"] == f"member:{b.id}"
    assert (await client.get(f"/t/{b.id}")).status_code == 200


async def test_cookie_is_secure_outside_local_development(settings: Settings, world: World) -> None:
    assert not SessionPolicy.from_settings(settings).secure
    assert SessionPolicy.from_settings(settings.model_copy(update={"env": "production"})).secure
    https = settings.model_copy(update={"public_url": "https://portal.example.cn"})
    assert SessionPolicy.from_settings(https).secure
    async with app_client(
        settings, base_url="https://localhost.local", public_url="https://portal.example.cn"
    ) as c:
        signed = await sign_in(c, world.users["manager_a"].login)
        header = session_cookie(signed)
        assert signed.status_code == 303 and header is not None and "Secure" in header


# -- timeouts ----------------------------------------------------------------------------------------------


async def test_idle_timeout_slides_with_use(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    with time_machine.travel(datetime.now(UTC), tick=True) as clock:
        await sign_in(client, world.users["manager_a"].login)
        key = client.cookies[COOKIE]
        first = await stored(database, key)
        assert first is not None and first.expires_at is not None
        # A request straight away changes nothing: no write, no new cookie.
        again = await client.get(f"/t/{a.id}")
        assert again.status_code == 200 and session_cookie(again) is None
        unchanged = await stored(database, key)
        assert unchanged is not None and unchanged.expires_at == first.expires_at
        # 20 minutes later the request renews the expiry (and the cookie) for another 30 minutes.
        clock.shift(timedelta(minutes=20))
        later = await client.get(f"/t/{a.id}")
        assert later.status_code == 200 and session_cookie(later) is not None
        renewed = await stored(database, key)
        assert renewed is not None and renewed.expires_at is not None
        assert renewed.expires_at - first.expires_at >= timedelta(minutes=19)
        # 45 minutes after sign-in, 25 after the last request: still signed in.
        clock.shift(timedelta(minutes=25))
        assert (await client.get(f"/t/{a.id}")).status_code == 200
        # 31 idle minutes: the session is gone; the page sends to /signin with a notice.
        clock.shift(timedelta(minutes=31))
        expired = await client.get(f"/t/{a.id}")
        assert notice_redirect(expired, f"/t/{a.id}"), expired.headers.get("location")
        cleared = session_cookie(expired)
        assert cleared is not None and cleared.startswith(f"{COOKIE}=null")
        signin = await client.get(expired.headers["location"])
        assert (
            signin.status_code == 200 and zh("Your session has ended. Please sign in again.") in signin.text
        )
        assert (await client.get(f"/t/{a.id}")).headers["location"] == f"/signin?next=/t/{a.id}"  # once


async def test_absolute_timeout_ends_even_a_busy_session(
    settings: Settings, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    async with app_client(settings, session_idle_minutes=24 * 60, session_absolute_hours=12) as c:
        with time_machine.travel(datetime.now(UTC), tick=True) as clock:
            await sign_in(c, world.users["manager_a"].login)
            key = c.cookies[COOKIE]
            for _ in range(4):  # busy all day long: the idle timeout never strikes
                clock.shift(timedelta(hours=2, minutes=59))
                assert (await c.get(f"/t/{a.id}")).status_code == 200
            clock.shift(timedelta(hours=2))  # 13h56 after sign-in
            ended = await c.get(f"/t/{a.id}")
            assert notice_redirect(ended, f"/t/{a.id}"), ended.headers.get("location")
            assert await stored(database, key) is None
            # The API answers 401 for such a session.
            await sign_in(c, world.users["manager_a"].login)
            assert (await c.get(f"/api/v1/tenants/{a.id}")).status_code == 200
            clock.shift(timedelta(hours=12, minutes=1))
            api = await c.get(f"/api/v1/tenants/{a.id}")
            assert api.status_code == 401 and api.json()["status"] == 401


def test_session_refusal_rules() -> None:
    twelve = timedelta(hours=12)
    now = time.time()
    assert session_refused({"uid": "x"}, absolute=twelve, valid_after=None)  # no start time: refused
    assert session_refused({"signed_in_at": "yesterday"}, absolute=twelve, valid_after=None)
    assert not session_refused({"signed_in_at": now - 60}, absolute=twelve, valid_after=None, now=now)
    assert not session_refused({"signed_in_at": int(now) - 60}, absolute=twelve, valid_after=None, now=now)
    assert session_refused({"signed_in_at": now - 12 * 3600}, absolute=twelve, valid_after=None, now=now)
    cutoff = datetime.fromtimestamp(now - 30, UTC)
    assert session_refused({"signed_in_at": now - 60}, absolute=twelve, valid_after=cutoff, now=now)
    assert not session_refused({"signed_in_at": now - 10}, absolute=twelve, valid_after=cutoff, now=now)


# -- sign out everywhere -----------------------------------------------------------------------------------


async def test_sign_out_everywhere_ends_the_sessions_of_every_device(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    manager = world.users["manager_a"]
    # Two devices: two cookie jars on the same portal.
    await sign_in(client, manager.login)
    phone = httpx.Cookies(client.cookies)
    phone_key = phone[COOKIE]
    client.cookies.clear()
    await sign_in(client, manager.login)
    assert client.cookies[COOKIE] != phone_key

    account = await client.get("/account/sessions")
    assert account.status_code == 200
    assert zh("with the demo sign-in") in account.text and 'id="session-started"' in account.text
    assert zh("Sign out everywhere") in account.text
    done = await post_form(client, "/account/sessions/signout-everywhere", {})
    assert done.status_code == 303 and done.headers["location"] == "/signin?notice=signed_out_everywhere"
    notice = await client.get(done.headers["location"])
    assert zh("You have been signed out on all your devices.") in notice.text
    assert (await client.get(f"/t/{a.id}")).status_code == 302  # this device: signed out

    client.cookies = phone  # the other device
    page = await client.get(f"/t/{a.id}")
    assert notice_redirect(page, f"/t/{a.id}"), page.headers.get("location")
    assert await stored(database, phone_key) is None
    client.cookies = httpx.Cookies(phone)
    assert (await client.get(f"/api/v1/tenants/{a.id}")).status_code == 401

    async with database.session(Scope.system("test: sign out everywhere")) as s:
        user = await s.get(User, manager.id)
        assert user is not None and user.sessions_valid_after is not None
        entry = (
            await s.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "auth.signout_everywhere", AuditEntry.object_id == str(manager.id)
                )
            )
        ).scalar_one()
        assert entry.tenant_id is None and entry.actor_user_id == manager.id

    # Signing in again works: the new session starts after the cut-off.
    client.cookies.clear()
    await sign_in(client, manager.login)
    assert (await client.get(f"/t/{a.id}")).status_code == 200


async def test_account_page_needs_a_session(client: AsyncTestClient) -> None:
    page = await client.get("/account/sessions")
    assert page.status_code == 302 and page.headers["location"] == "/signin?next=/account/sessions"
    refused = await post_form(client, "/account/sessions/signout-everywhere", {})
    assert refused.status_code == 302


# -- the stores -------------------------------------------------------------------------------------------


async def test_database_store_contract(database: Database) -> None:
    store = DatabaseStore(database)
    key, forever, renew = (f"test-{uuid.uuid4().hex}" for _ in range(3))
    assert (
        await store.get(key) is None and not await store.exists(key) and await store.expires_in(key) is None
    )
    await store.set(key, b"one", expires_in=60)
    assert await store.get(key) == b"one" and await store.exists(key)
    left = await store.expires_in(key)
    assert left is not None and 55 <= left <= 60
    await store.set(key, "two", expires_in=timedelta(seconds=60))  # an upsert, not a second row
    assert await store.get(key) == b"two"
    await store.set(forever, b"always")
    assert await store.exists(forever) and await store.expires_in(forever) is None
    await store.set(renew, b"r", expires_in=10)
    assert await store.get(renew, renew_for=100) == b"r"
    left = await store.expires_in(renew)
    assert left is not None and left > 90
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=120), tick=False):
        assert await store.get(key) is None and not await store.exists(key)  # expired rows read as missing
        assert await store.expires_in(key) is None
        assert await store.get(renew) is None
        assert await store.get(forever) == b"always"
        assert await store.delete_expired() >= 2
    assert await stored(database, key) is None and await stored(database, renew) is None
    await store.delete(forever)
    assert await stored(database, forever) is None


@pytest.fixture
def redis_url() -> str:
    parts = urlsplit(require_broker("redis"))
    return urlunsplit(parts._replace(path="/14"))  # not the brokers' database (15), which tests flush


async def test_sessions_live_in_redis_when_configured(
    settings: Settings, database: Database, world: World, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    a = world.tenants["a"]
    r = aioredis.from_url(redis_url)
    try:
        async with app_client(settings, redis_url=redis_url) as c:
            assert isinstance(c.app.stores.get("sessions"), RedisStore)
            await sign_in(c, world.users["manager_a"].login)
            key = c.cookies[COOKIE]
            raw = await r.get(f"portal_sessions:{key}")
            assert raw is not None and json.loads(raw)["uid"] == str(world.users["manager_a"].id)
            assert 29 * 60 < await r.ttl(f"portal_sessions:{key}") <= 30 * 60
            assert await stored(database, key) is None  # not in the database table
            assert (await c.get(f"/t/{a.id}")).status_code == 200
            await post_form(c, "/signout", {})
            assert await r.get(f"portal_sessions:{key}") is None
    finally:
        await r.aclose()
