"""Every JSON error is an RFC 9457 problem detail in the caller's language; pages keep their error pages."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import Response
from litestar.testing import AsyncTestClient

from portal.config import Settings
from portal.core.db import Database
from portal.core.i18n import using_locale
from portal.core.problems import PROBLEM_JSON, field_errors, title_for
from portal.core.tenancy import Scope
from portal.identity import api_keys
from tests.fixtures.factories import World
from tests.fixtures.web import csrf_token, limited_client, sign_in

MEMBERS = {"type", "title", "status", "detail", "instance"}


def problem(response: Response, status: int, *, lang: str = "zh-CN") -> dict[str, Any]:
    """The body of ``response``, after checking that it is problem details of ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["content-language"] == lang
    body: dict[str, Any] = response.json()
    assert body.keys() >= MEMBERS and body["status"] == status, body
    assert body["instance"] == response.request.url.path
    return body


def zh_title(status: int) -> str:
    with using_locale("zh_CN"):
        return title_for(status)


async def post_json(client: AsyncTestClient, path: str, body: object, **headers: str) -> Response:
    token = await csrf_token(client)
    return await client.post(path, json=body, headers={"x-csrftoken": token, **headers})


async def test_400_lists_each_field_in_the_callers_language(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["manager_a"].login)
    body = problem(await client.get("/api/v1/tenants/", params={"limit": "0", "offset": "x"}), 400)
    assert body["type"] == "about:blank" and body["title"] == zh_title(400)
    assert body["detail"] == "有些值缺失或无效：每一项都列在 errors 中。"
    assert sorted(body["errors"], key=lambda e: e["field"]) == [
        {"field": "limit", "source": "query", "message": "不能小于 1。"},
        {"field": "offset", "source": "query", "message": "必须是整数。"},
    ]
    english = await client.get("/api/v1/tenants/", params={"limit": "501"}, headers={"accept-language": "en"})
    body = problem(english, 400, lang="en")
    assert body["title"] == "The request could not be understood."
    assert body["errors"] == [{"field": "limit", "source": "query", "message": "This must be at most 500."}]
    # A body that misses its members: each one is named.
    body = problem(await post_json(client, "/evidence/slots", {"size": 0}), 400)
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields["client_id"] == fields["owner_id"] == "必须填写。" and fields["size"] == "不能小于 1。"


async def test_401_for_the_api_and_for_scripts_instead_of_a_redirect(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    signed_out = await client.get("/api/v1/tenants/")
    body = problem(signed_out, 401)
    assert body["title"] == body["detail"] == zh_title(401)
    assert signed_out.headers["www-authenticate"] == 'Bearer realm="portal"'  # the operation takes keys
    # A script posting to a documented operation is told, not redirected to the sign-in page.
    body = problem(await post_json(client, "/evidence/slots", {}), 401)
    assert body["type"] == "about:blank"
    # A page still sends a person to sign in.
    page = await client.get(f"/t/{world.tenants['a'].id}")
    assert page.status_code == 302 and page.headers["location"].startswith("/signin")
    refused = await client.get("/api/v1/tenants/", headers={"Authorization": "Bearer fsk_00000000_nope"})
    body = problem(refused, 401)
    assert body["code"] == "api_key_refused" and body["type"] == "urn:fire-portal:problem:api_key_refused"
    assert body["detail"] == "API 密钥无效、已过期或已吊销。"
    assert world.insurer is not None
    async with database.session(Scope.system("test")) as s:
        key = await api_keys.create_key(s, insurer_id=world.insurer.id, name="t", created_by=None)
    ok = await client.get("/api/v1/tenants/", headers={"Authorization": f"Bearer {key.plaintext}"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"


async def test_403_a_role_the_operation_does_not_take(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["insurer"].login)  # insurers read risk status, never evidence
    slot = {"client_id": str(uuid.uuid4()), "owner_type": "tenant", "owner_id": str(world.tenants["c"].id)}
    body = problem(
        await post_json(client, "/evidence/slots", {**slot, "content_type": "image/jpeg", "size": 1}), 403
    )
    assert body["title"] == body["detail"] == zh_title(403)
    # Without the CSRF header: the same shape.
    without = await client.post("/evidence/slots", json=slot)
    assert problem(without, 403)["detail"] == zh_title(403)


async def test_404_another_tenants_object(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["manager_a"].login)
    body = problem(await client.get(f"/api/v1/tenants/{world.tenants['b'].id}"), 404)
    assert body == {
        "type": "about:blank",
        "title": zh_title(404),
        "status": 404,
        "detail": zh_title(404),
        "instance": f"/api/v1/tenants/{world.tenants['b'].id}",
    }
    # A malformed id on a documented path misses every route: still problem details.
    problem(await post_json(client, "/evidence/slots/not-a-uuid/complete", {}), 404)


async def test_405_says_what_is_allowed(client: AsyncTestClient) -> None:
    for method, path, allowed in (
        ("DELETE", "/api/v1/tenants/", {"GET", "OPTIONS"}),
        ("GET", "/evidence/slots", {"POST", "OPTIONS"}),
        ("PUT", "/health", {"GET", "OPTIONS"}),
    ):
        response = await client.request(method, path)
        assert problem(response, 405)["title"] == zh_title(405)
        assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    page = await client.request("DELETE", "/signin")  # a page: its error page, with Allow too
    assert page.status_code == 405 and "text/html" in page.headers["content-type"]
    assert "GET" in page.headers["allow"]


async def test_422_a_rule_refused_with_its_code(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["manager_a"].login)
    slot = {
        "client_id": str(uuid.uuid4()),
        "owner_type": "tenant",
        "owner_id": str(world.tenants["a"].id),
        "content_type": "text/plain",
        "size": 10,
    }
    body = problem(await post_json(client, "/evidence/slots", slot), 422)
    assert body["code"] == "type" and body["type"] == "urn:fire-portal:problem:type"
    assert body["title"] == zh_title(422) and "照片" in body["detail"]
    body = problem(
        await post_json(client, "/evidence/slots", slot, **{"accept-language": "en"}), 422, lang="en"
    )
    assert body["detail"] == "This file is not a photo (JPEG, PNG, WebP or HEIC) or a PDF document."


async def test_429_keeps_its_rate_limit_headers(settings: Settings) -> None:
    async with limited_client(settings, rate_limit_public_per_minute=1) as c:
        assert (await c.get("/health")).status_code == 200
        refused = await c.get("/health")
        body = problem(refused, 429)
        assert body["title"] == body["detail"] == zh_title(429)
        assert refused.headers["ratelimit-limit"] == "1"


async def test_pages_keep_their_translated_error_pages(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["manager_a"].login)
    page = await client.get(f"/t/{world.tenants['b'].id}")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert zh_title(404) in page.text


def test_each_kind_of_field_problem_has_its_sentence() -> None:
    from litestar.exceptions import ValidationException

    explanations = {
        "Field required": "必须填写。",
        "Expected `str` of length <= 80": "不能超过 80 个字符。",
        "String should have at most 200 characters": "不能超过 200 个字符。",
        "Expected `int` >= 0": "不能小于 0。",
        "Input should be less than or equal to 9": "不能大于 9。",
        "Input should be a valid UUID, invalid length": "必须是 UUID。",
        "Input should be 'tenant' or 'hazard'": "必须是 API 列出的值之一。",
        "Expected `int`, got `str`": "必须是整数。",
        "Something nobody foresaw": "此值在这里无效。",
    }
    exc = ValidationException(extra=[{"message": m, "key": "f"} for m in explanations])
    with using_locale("zh_CN"):
        assert [e["message"] for e in field_errors(exc)] == list(explanations.values())
