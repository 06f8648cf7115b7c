"""Self-check pages over HTTP: save as you go with htmx, refusals in place, submission, access."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.selfcheck import SelfCheck
from portal.models.tenants import Tenant
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.monthly import services as sc_services
from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in

HX = {"HX-Request": "true"}


async def _open(database: Database, tenant_id, period: str = "2026-09") -> SelfCheck:  # type: ignore[no-untyped-def]
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
        tenant = await s.get(Tenant, tenant_id)
        sc = await sc_services.ensure_selfcheck(s, tenant, period)  # type: ignore[arg-type]
        assert sc is not None
        return sc


async def test_manager_fills_in_item_by_item(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    sc = await _open(database, a.id)
    await sign_in(client, world.users["manager_a"].login)
    listing = await client.get(f"/t/{a.id}/selfchecks/")
    assert listing.status_code == 200 and "2026-09" in listing.text
    form = await client.get(f"/t/{a.id}/selfchecks/{sc.id}")
    assert (
        form.status_code == 200
        and "GEN-M-01" in form.text
        and "0 / 22" in form.text.replace("0/22", "0 / 22")
    )
    base = f"/t/{a.id}/selfchecks/{sc.id}/items"
    token = client.cookies["portal_csrf"]
    ok = await client.post(
        f"{base}/GEN-M-01", data={"answer": "pass", "note": ""}, headers={**HX, "x-csrftoken": token}
    )
    assert ok.status_code == 200 and "<html" not in ok.text
    assert (
        'id="item-GEN-M-01"' in ok.text
        and 'hx-swap-oob="true"' in ok.text
        and "共 22 项，已回答 1 项" in ok.text
    )
    refused = await client.post(
        f"{base}/GEN-M-02", data={"answer": "fail", "note": ""}, headers={**HX, "x-csrftoken": token}
    )
    assert refused.status_code == 422 and "请说明存在什么问题" in refused.text
    failed = await client.post(
        f"{base}/GEN-M-02",
        data={"answer": "fail", "note": "消防通道堆放杂物"},
        headers={**HX, "x-csrftoken": token},
    )
    assert failed.status_code == 200 and "为什么不行" in failed.text and "怎么整改" in failed.text
    unknown = await client.post(
        f"{base}/NOPE-99", data={"answer": "pass"}, headers={**HX, "x-csrftoken": token}
    )
    assert unknown.status_code == 404
    early = await post_form(client, f"/t/{a.id}/selfchecks/{sc.id}/submit", {"confirm": "on"})
    assert early.status_code == 422 and "请先回答所有检查项再提交" in early.text
    async with database.session(Scope.tenant(a.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        codes = [i.code for i in loaded.checklist.items]  # type: ignore[union-attr]
    for code in codes[2:]:
        await client.post(f"{base}/{code}", data={"answer": "pass"}, headers={**HX, "x-csrftoken": token})
    done = await post_form(client, f"/t/{a.id}/selfchecks/{sc.id}/submit", {"confirm": "on"})
    assert done.status_code == 303
    frozen = await client.post(
        f"{base}/GEN-M-01", data={"answer": "fail", "note": "x"}, headers={**HX, "x-csrftoken": token}
    )
    assert frozen.status_code == 422 and "已经提交" in frozen.text
    async with database.session(Scope.tenant(a.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None and loaded.status.value == "submitted"
        assert {x.item_code: x.answer.value for x in loaded.answers}["GEN-M-01"] == "pass"


async def test_staff_cannot_answer_and_foreign_selfcheck_is_404(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    b = world.tenants["b"]
    sc_b = await _open(database, b.id, "2026-08")
    sc_a = await _open(database, world.tenants["a"].id, "2026-08")
    await sign_in(client, world.users["both"].login, ctx=f"member:{b.id}")  # staff in tenant b
    assert (await client.get(f"/t/{b.id}/selfchecks/{sc_b.id}")).status_code == 200
    refused = await post_form(client, f"/t/{b.id}/selfchecks/{sc_b.id}/items/GEN-M-01", {"answer": "pass"})
    assert refused.status_code == 403
    # Tenant a's self-check, through tenant b's URL or its own: invisible from tenant b's context.
    assert (await client.get(f"/t/{b.id}/selfchecks/{sc_a.id}")).status_code == 404
    assert (await client.get(f"/t/{world.tenants['a'].id}/selfchecks/{sc_a.id}")).status_code == 404


async def test_an_item_the_checklist_does_not_have_is_404_whatever_the_answer(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    sc = await _open(database, a.id, "2026-08")
    await sign_in(client, world.users["manager_a"].login)
    base = f"/t/{a.id}/selfchecks/{sc.id}/items"
    for data in ({"answer": "bogus"}, {"answer": "pass"}, {}):
        response = await post_form(client, f"{base}/NO-SUCH-ITEM", data)
        assert response.status_code == 404, (data, response.status_code)
    # A real item with a bogus answer is the form's own refusal, in place.
    bogus = await post_form(client, f"{base}/GEN-M-01", {"answer": "bogus"})
    assert bogus.status_code == 422 and "选择" in bogus.text
    async with database.session(Scope.tenant(a.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None and loaded.answers == []
