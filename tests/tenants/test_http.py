"""Tenancy over HTTP: members see their own tenant, foreign ids answer exactly 404, roles see their scope."""

from __future__ import annotations

import uuid

from litestar.testing import AsyncTestClient

from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in


async def test_member_sees_own_tenant_and_404_for_a_foreign_one(
    client: AsyncTestClient, world: World
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    response = await sign_in(client, world.users["manager_a"].login)
    assert response.status_code == 303 and response.headers["location"] == f"/t/{a.id}"
    own = await client.get(f"/t/{a.id}")
    assert own.status_code == 200
    assert "测试单位a" in own.text and "管理人a" in own.text
    foreign = await client.get(f"/t/{b.id}")
    assert foreign.status_code == 404
    assert "测试单位b" not in foreign.text
    assert "页面不存在，或您无权查看。" in foreign.text  # translated, no stack trace
    missing = await client.get(f"/t/{uuid.uuid4()}")
    assert missing.status_code == 404
    api = await client.get(f"/api/v1/tenants/{b.id}")
    assert api.status_code == 404 and api.json()["status"] == 404
    api_own = await client.get(f"/api/v1/tenants/{a.id}")
    assert api_own.status_code == 200 and api_own.json()["code"] == a.code


async def test_malformed_id_and_unknown_route(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["manager_a"].login)
    for path in ("/t/not-a-uuid", "/no/such/page"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "Traceback" not in response.text
        assert "页面不存在" in response.text


async def test_person_in_two_tenants_switches_context(client: AsyncTestClient, world: World) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    await sign_in(client, world.users["both"].login, ctx=f"member:{a.id}")
    assert (await client.get(f"/t/{a.id}")).status_code == 200
    assert (await client.get(f"/t/{b.id}")).status_code == 404  # one tenant at a time
    switched = await post_form(client, "/switch", {"ctx": f"member:{b.id}"})
    assert switched.status_code == 303 and switched.headers["location"] == f"/t/{b.id}"
    assert (await client.get(f"/t/{b.id}")).status_code == 200
    assert (await client.get(f"/t/{a.id}")).status_code == 404
    refused = await post_form(client, "/switch", {"ctx": f"member:{world.tenants['c'].id}"})
    assert refused.status_code == 403


async def test_regulator_lists_exactly_its_subtree(client: AsyncTestClient, world: World) -> None:
    response = await sign_in(client, world.users["regulator"].login)
    assert response.headers["location"] == "/tenants"
    listing = await client.get("/api/v1/tenants/", params={"limit": 500})
    codes = {item["code"] for item in listing.json()["items"]}
    assert codes == {world.tenants["a"].code, world.tenants["b"].code}
    assert (await client.get(f"/t/{world.tenants['c'].id}")).status_code == 404
    page = await client.get("/tenants", params={"q": "测试单位"})
    assert page.status_code == 200 and "测试单位a" in page.text and "测试单位c" not in page.text


async def test_htmx_search_answers_a_fragment(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["regulator"].login)
    full = await client.get("/tenants", params={"q": "测试单位a"})
    fragment = await client.get("/tenants", params={"q": "测试单位a"}, headers={"HX-Request": "true"})
    assert "<html" in full.text and "<html" not in fragment.text
    assert "测试单位a" in fragment.text


async def test_warden_and_insurer_scopes_over_http(client: AsyncTestClient, world: World) -> None:
    for login, expected in (("warden", {"a"}), ("insurer", {"c"}), ("regulator", {"a", "b"})):
        await sign_in(client, world.users[login].login)
        body = (await client.get("/api/v1/tenants/")).json()
        assert {i["code"] for i in body["items"]} == {world.tenants[k].code for k in expected}
        # The total is counted under the same scope as the rows (not every tenant of the platform).
        assert body["total"] == len(expected), login


async def test_signed_out_pages_redirect_and_api_answers_401(client: AsyncTestClient, world: World) -> None:
    client.cookies.clear()
    page = await client.get(f"/t/{world.tenants['a'].id}")
    assert page.status_code == 302 and page.headers["location"].startswith("/signin")
    api = await client.get(f"/api/v1/tenants/{world.tenants['a'].id}")
    assert api.status_code == 401


async def test_state_change_without_csrf_token_is_refused(client: AsyncTestClient, world: World) -> None:
    await client.get("/signin")
    response = await client.post("/signin/demo", data={"login": world.users["manager_a"].login})
    assert response.status_code == 403
    assert "portal_session" not in client.cookies or (await client.get("/")).headers["location"] == "/signin"


async def test_language_switch_sets_cookie_and_english_pages(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["manager_a"].login)
    response = await post_form(client, "/lang", {"lang": "en", "next": f"/t/{world.tenants['a'].id}"})
    assert response.status_code == 303
    page = await client.get(f"/t/{world.tenants['a'].id}")
    assert 'lang="en"' in page.text and "People" in page.text and "Unit a" in page.text
    await post_form(client, "/lang", {"lang": "zh_CN"})
    page = await client.get(f"/t/{world.tenants['a'].id}")
    assert 'lang="zh-CN"' in page.text and "人员" in page.text


async def test_openapi_docs_are_served_without_a_cdn(client: AsyncTestClient) -> None:
    docs = await client.get("/api/docs")
    assert docs.status_code == 200 and "/vendor/swagger-ui-dist/swagger-ui-bundle.js" in docs.text
    bundle = await client.get("/vendor/swagger-ui-dist/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    schema = (await client.get("/api/docs/openapi.json")).json()
    assert "/api/v1/tenants/{tenant_id}" in schema["paths"] and "/health" in schema["paths"]


async def test_health_reports_each_service(client: AsyncTestClient) -> None:
    body = (await client.get("/health")).json()
    assert body == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}


async def test_hostile_query_parameters_get_clear_answers(client: AsyncTestClient, world: World) -> None:
    await sign_in(client, world.users["regulator"].login)
    nul = await client.get("/tenants", params={"q": "测试\x00单位"})
    assert nul.status_code == 200  # the control character is dropped, the search still runs
    huge = await client.get("/api/v1/tenants/", params={"offset": str(2**63)})
    assert huge.status_code == 400 and huge.json()["status"] == 400
    negative = await client.get("/tenants", params={"page": "-1"})
    assert negative.status_code == 400 and "Traceback" not in negative.text
