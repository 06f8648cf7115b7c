"""Insurer API keys: shown once, stored as a hash, scoped to the insurer, expirable and revocable."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from httpx import Response
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.identity import access, api_keys
from portal.insurer import services as insurer_services
from portal.models.identity import ApiKey
from tests.fixtures.factories import World
from tests.fixtures.web import csrf_token, post_form, sign_in


async def test_key_lifecycle(database: Database, world: World) -> None:
    assert world.insurer is not None
    async with database.session(Scope.system("test")) as s:
        new = await api_keys.create_key(s, insurer_id=world.insurer.id, name="underwriting", created_by=None)
    assert re.fullmatch(r"fsk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", new.plaintext)
    assert new.plaintext not in (new.key.secret_hash, new.key.prefix)
    async with database.session(Scope.system("test")) as s:
        found = await api_keys.authenticate(s, new.plaintext)
        assert found is not None and found.id == new.key.id and found.last_used_at is not None
        assert (
            await api_keys.authenticate(s, new.plaintext[:-1] + ("A" if new.plaintext[-1] != "A" else "B"))
            is None
        )
        assert await api_keys.authenticate(s, "fsk_nope_x") is None
        assert await api_keys.authenticate(s, "garbage") is None
        later = datetime.now(UTC) + timedelta(days=366)
        assert await api_keys.authenticate(s, new.plaintext, now=later) is None  # expired
    async with database.session(Scope.system("test")) as s:
        other = uuid.uuid4()
        assert await api_keys.revoke_key(s, insurer_id=other, key_id=new.key.id) is None
        assert await api_keys.revoke_key(s, insurer_id=world.insurer.id, key_id=new.key.id) is not None
    async with database.session(Scope.system("test")) as s:
        assert await api_keys.authenticate(s, new.plaintext) is None


async def test_insurer_portal_creates_shows_once_and_revokes(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    await sign_in(client, world.users["insurer"].login)
    empty = await client.get("/insurer/keys/")
    assert empty.status_code == 200 and "还没有密钥" in empty.text
    created = await post_form(client, "/insurer/keys/", {"name": "核保系统", "valid_days": "90"})
    assert created.status_code == 200
    plaintext = re.search(r'value="(fsk_[^"]+)"', created.text)
    assert plaintext is not None and "不会再次显示" in created.text
    listing = await client.get("/insurer/keys/")
    assert plaintext.group(1) not in listing.text  # only the prefix is ever shown again
    prefix = plaintext.group(1).split("_")[1]
    assert f"fsk_{prefix}_" in listing.text
    async with database.session(Scope.system("test")) as s:
        key = (await s.execute(select(ApiKey).where(ApiKey.prefix == prefix))).scalar_one()
    revoked = await post_form(client, f"/insurer/keys/{key.id}/revoke", {})
    assert revoked.status_code == 303
    async with database.session(Scope.system("test")) as s:
        assert (await s.get(ApiKey, key.id)).revoked_at is not None  # type: ignore[union-attr]


async def test_bad_input_changes_nothing(client: AsyncTestClient, database: Database, world: World) -> None:
    assert world.insurer is not None
    await sign_in(client, world.users["insurer"].login)

    async def count() -> int:
        async with database.session(Scope.system("test")) as s:
            return int(
                (
                    await s.execute(
                        select(func.count()).select_from(ApiKey).where(ApiKey.insurer_id == world.insurer.id)
                    )
                ).scalar_one()
            )  # type: ignore[union-attr]

    before = await count()
    for form, message in (
        ({"name": "", "valid_days": "30"}, "请为密钥命名"),
        ({"name": "x", "valid_days": "9999"}, "有效期"),
        ({"name": "x", "valid_days": "abc"}, "有效期"),
    ):
        response = await post_form(client, "/insurer/keys/", form)
        assert response.status_code == 400 and message in response.text
    assert await count() == before


async def test_foreign_key_is_404_and_other_roles_are_refused(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    async with database.session(Scope.system("test")) as s:
        other = await insurer_services.add_insurer(
            s, code=f"I{uuid.uuid4().hex[:8]}", name_zh="别家保险", name_en="Other", uscc=None
        )
        foreign = await api_keys.create_key(s, insurer_id=other.id, name="theirs", created_by=None)
    await sign_in(client, world.users["insurer"].login)
    response = await post_form(client, f"/insurer/keys/{foreign.key.id}/revoke", {})
    assert response.status_code == 404
    async with database.session(Scope.system("test")) as s:
        assert (await s.get(ApiKey, foreign.key.id)).revoked_at is None  # type: ignore[union-attr]
    await sign_in(client, world.users["manager_a"].login)
    assert (await client.get("/insurer/keys/")).status_code == 403


async def test_bearer_key_reads_only_consenting_tenants(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    assert world.insurer is not None
    async with database.session(Scope.system("test")) as s:
        new = await api_keys.create_key(s, insurer_id=world.insurer.id, name="pricing", created_by=None)
    client.cookies.clear()
    auth = {"Authorization": f"Bearer {new.plaintext}"}
    listing = await client.get("/api/v1/tenants/", headers=auth)
    assert listing.status_code == 200
    assert {i["code"] for i in listing.json()["items"]} == {world.tenants["c"].code}
    assert (await client.get(f"/api/v1/tenants/{world.tenants['c'].id}", headers=auth)).status_code == 200
    assert (await client.get(f"/api/v1/tenants/{world.tenants['a'].id}", headers=auth)).status_code == 404
    for bad in ("Bearer fsk_00000000_nope", "Bearer garbage"):
        refused = await client.get("/api/v1/tenants/", headers={"Authorization": bad})
        assert refused.status_code == 401 and refused.json()["status"] == 401
    async with database.session(Scope.system("test")) as s:
        assert (await s.get(ApiKey, new.key.id)).last_used_at is not None  # type: ignore[union-attr]
        await api_keys.revoke_key(s, insurer_id=world.insurer.id, key_id=new.key.id)
    assert (await client.get("/api/v1/tenants/", headers=auth)).status_code == 401


def _signed_out(response: Response, path: str) -> bool:
    """The answer to nobody signed in: 401 problem details on the JSON API (``/api/`` and the documented
    operations' paths, such as the upload slots), the sign-in page (a redirect) for pages."""
    if response.headers.get("content-type") == "application/problem+json":
        return response.status_code == 401 and path.startswith(("/api/", "/evidence/slots"))
    return response.status_code in (302, 303) and response.headers["location"].startswith("/signin")


def _filled(param: re.Match[str]) -> str:
    return str(uuid.uuid4()) if param.group(2) == ":uuid" else "x"


def _concrete(path: str) -> str:
    """A route's path with every parameter filled in (an unknown id: the guard answers before any lookup)."""
    return re.sub(r"\{([a-z_]+)(:[a-z]+)?\}", _filled, path)


async def test_a_key_alone_reaches_only_the_routes_that_take_keys(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    """A key is not a person. With a valid key and no session, every route that is not public and does not
    take keys answers 401: the key's creator's inbox, passkeys, sessions, key management, role switch."""
    assert world.insurer is not None
    async with database.session(Scope.system("test")) as s:
        new = await api_keys.create_key(
            s, insurer_id=world.insurer.id, name="pricing", created_by=world.users["insurer"].id
        )
    client.cookies.clear()
    token = await csrf_token(client)  # a CSRF cookie is not a session: forms get past CSRF to the guard
    headers = {"Authorization": f"Bearer {new.plaintext}", "x-csrftoken": token}
    app = client.app
    walked, takes_keys = 0, 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            rule = access.access_of(handler)
            methods = sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"})
            if rule is None or rule.is_public or not methods:
                continue
            for method in methods:
                path = _concrete(route.path)
                response = await client.request(method, path, headers=headers)
                walked += 1
                if rule.by_api_key:
                    takes_keys += 1
                    assert response.status_code in (200, 404), (method, route.path, response.status_code)
                else:
                    assert _signed_out(response, path), (method, route.path, response.status_code)
    assert walked > 40 and takes_keys >= 2  # the walk covered the app, and the key's own API answered
    for path in ("/insurer/keys/", "/inbox/", "/account/passkeys", "/account/sessions/", "/switch"):
        assert _signed_out(await client.get(path, headers=headers), path), path
    # The same key still reads its consenting tenant through the API.
    c = world.tenants["c"]
    assert (await client.get(f"/api/v1/tenants/{c.id}", headers=headers)).status_code == 200
