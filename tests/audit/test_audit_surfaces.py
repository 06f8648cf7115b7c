"""The audit log's surfaces over HTTP, on both databases: the per-tenant audit page (who may read it, order,
filters, pagination, the verification badge), cross-tenant reads landing in the read tenant's chain, and the
tenancy core's state changes being recorded.

Pages are read in English (the ``lang`` cookie), so the assertions do not depend on the Chinese catalogue.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from portal.audit import services as audit
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.audit import PLATFORM_CHAIN, AuditEntry
from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in

SEQ = re.compile(r'data-seq="(\d+)"')


async def chain_of(database: Database, tenant_id: uuid.UUID) -> list[AuditEntry]:
    async with database.session(Scope.system("test: read a chain")) as s:
        rows = await s.execute(
            select(AuditEntry).where(AuditEntry.chain == str(tenant_id)).order_by(AuditEntry.seq)
        )
        return list(rows.scalars())


async def platform_entries(database: Database, object_id: uuid.UUID) -> list[AuditEntry]:
    async with database.session(Scope.system("test: read the platform chain")) as s:
        rows = await s.execute(
            select(AuditEntry)
            .where(AuditEntry.chain == PLATFORM_CHAIN, AuditEntry.object_id == str(object_id))
            .order_by(AuditEntry.seq)
        )
        return list(rows.scalars())


async def record(database: Database, tenant_id: uuid.UUID, action: str, n: int = 1, **kw: Any) -> None:
    async with database.session(Scope.tenant(tenant_id)) as s:
        for i in range(n):
            await audit.record(s, action, tenant_id=tenant_id, detail={"i": i}, **kw)


async def english(client: AsyncTestClient, login: str, ctx: str = "") -> None:
    await sign_in(client, login, ctx)
    client.cookies.set("lang", "en")


def seqs(html: str) -> list[int]:
    return [int(s) for s in SEQ.findall(html)]


# -- state changes of the tenancy core ---------------------------------------------------------------


async def test_registration_membership_and_language_changes_are_audited(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, manager = world.tenants["a"], world.users["manager_a"]
    entries = await chain_of(database, a.id)
    assert [e.action for e in entries[:3]] == ["tenant.registered", "member.added", "member.added"]
    assert entries[0].detail["code"] == a.code and entries[0].object_id == str(a.id)
    assert entries[1].detail == {"user_id": str(manager.id), "display_name": "管理人a", "role": "manager"}
    assert entries[2].detail["role"] == "responsible"  # "both" is a's responsible person
    platform = await platform_entries(database, a.id)
    assert [e.action for e in platform] == ["tenant.registered"] and platform[0].tenant_id is None

    await sign_in(client, manager.login)
    assert (await post_form(client, "/lang", {"lang": "en"})).status_code == 303
    changed = await platform_entries(database, manager.id)
    assert [(e.action, e.detail, e.actor_user_id) for e in changed] == [
        ("user.locale_changed", {"from": None, "to": "en"}, manager.id)
    ]
    await post_form(client, "/lang", {"lang": "en"})  # no change, no entry
    assert len(await platform_entries(database, manager.id)) == 1
    assert await audit.verify(database, tenant_id=a.id) == []


# -- the audit page -----------------------------------------------------------------------------------


async def test_manager_sees_the_chain_newest_first_with_labels_and_badge(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    await record(database, a.id, "selfcheck.created")
    await record(database, a.id, "custom.unlabelled_action")
    last = (await chain_of(database, a.id))[-1].seq
    await english(client, world.users["manager_a"].login)
    response = await client.get(f"/t/{a.id}/audit")
    assert response.status_code == 200, response.text
    html = response.text
    assert "<h1>Audit log</h1>" in html and "Unit a" in html
    assert "Chain verified ✓" in html
    order = seqs(html)
    assert order == sorted(order, reverse=True) and order[0] == last and order[-1] == 0
    assert "Other event (custom.unlabelled_action)" in html  # no label: says so, and under which name
    assert "Monthly self-check started" in html and "selfcheck.created</" not in html  # no raw id shown
    assert "Unit registered on the platform" in html and "Person joined" in html
    assert f"{last + 1} entries" in html
    # A member reading its own audit log is not a cross-tenant read.
    assert [e.action for e in await chain_of(database, a.id)][-1] == "custom.unlabelled_action"


async def test_who_may_read_the_audit_page(client: AsyncTestClient, world: World) -> None:
    a, b, c = world.tenants["a"], world.tenants["b"], world.tenants["c"]
    both = world.users["both"].login  # responsible person of a, staff of b
    await sign_in(client, both, f"member:{a.id}")
    assert (await client.get(f"/t/{a.id}/audit")).status_code == 200
    await sign_in(client, both, f"member:{b.id}")
    staff = await client.get(f"/t/{b.id}/audit")
    assert staff.status_code == 403 and "Chain verified" not in staff.text
    # Roles that never read an audit log are refused whatever the id (the same answer: no oracle).
    assert (await client.get(f"/t/{a.id}/audit")).status_code == 403
    await sign_in(client, world.users["manager_b"].login)
    foreign = await client.get(f"/t/{a.id}/audit")
    assert foreign.status_code == 404 and "测试单位a" not in foreign.text
    assert (await client.get(f"/t/{uuid.uuid4()}/audit")).status_code == 404
    await sign_in(client, world.users["warden"].login)
    for tenant_id in (a.id, b.id, uuid.uuid4()):  # in the warden's grid, outside it, nowhere
        assert (await client.get(f"/t/{tenant_id}/audit")).status_code == 403
    await sign_in(client, world.users["insurer"].login)
    assert (await client.get(f"/t/{c.id}/audit")).status_code == 403  # consented, but not to this
    await sign_in(client, world.users["regulator"].login)
    assert (await client.get(f"/t/{c.id}/audit")).status_code == 404  # another district
    client.cookies.clear()
    signed_out = await client.get(f"/t/{a.id}/audit")
    assert signed_out.status_code == 302 and signed_out.headers["location"].startswith("/signin")


async def test_the_regulator_reads_the_audit_page_and_that_read_is_recorded(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, regulator = world.tenants["a"], world.users["regulator"]
    await english(client, regulator.login)
    response = await client.get(f"/t/{a.id}/audit", headers={"X-Request-ID": "audit-read-1"})
    assert response.status_code == 200 and "Chain verified ✓" in response.text
    read = (await chain_of(database, a.id))[-1]
    assert (read.action, read.actor_user_id, read.request_id) == ("audit.read", regulator.id, "audit-read-1")
    assert read.detail["as"] == "regulator" and read.ip and regulator.login in read.actor
    # The read shows on the page itself, labelled, with who read it.
    again = await client.get(f"/t/{a.id}/audit", params={"action": "audit.read"})
    assert "Audit log viewed from outside" in again.text and "request audit-read-1" in again.text
    assert seqs(again.text)[-1] == read.seq
    assert await audit.verify(database, tenant_id=a.id) == []


async def test_filters_pagination_and_the_empty_state(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    b = world.tenants["b"]
    await record(database, b.id, "test.step", 30, actor=audit.Actor(label="Filter Person (fp)"))
    await record(database, b.id, "test.other", 2, actor=audit.Actor(label="Someone Else (se)"))
    await english(client, world.users["manager_b"].login)
    path = f"/t/{b.id}/audit"

    first = await client.get(path, params={"action": "test.step"})
    assert first.status_code == 200 and "<html" in first.text
    assert "30 entries" in first.text and len(seqs(first.text)) == 25
    assert "Page 1 of 2" in first.text
    assert f'href="/t/{b.id}/audit?action=test.step&amp;page=2"' in first.text
    assert '<option value="test.step" selected>' in first.text

    fragment = await client.get(
        path, params={"action": "test.step", "page": 2}, headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert len(seqs(fragment.text)) == 5 and "Page 2 of 2" in fragment.text
    assert 'id="audit-count"' in fragment.text and 'hx-swap-oob="true"' in fragment.text
    full_two = await client.get(path, params={"action": "test.step", "page": 2})
    assert "<html" in full_two.text and seqs(full_two.text) == seqs(fragment.text)
    assert max(seqs(full_two.text)) < min(seqs(first.text))  # newest first across pages

    by_actor = await client.get(path, params={"actor": "someone else"}, headers={"HX-Request": "true"})
    assert len(seqs(by_actor.text)) == 2 and "2 entries" in by_actor.text
    assert "test.step" not in by_actor.text

    nothing = await client.get(path, params={"actor": "nobody at all"})
    assert nothing.status_code == 200 and seqs(nothing.text) == []
    assert "No entries match these filters." in nothing.text
    bad = await client.get(path, params={"from": "23/11/2026"})
    assert bad.status_code == 400 and "Traceback" not in bad.text


async def test_date_filters_are_calendar_days_in_shanghai(
    client: AsyncTestClient, database: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = world.tenants["c"]

    def frozen(moment: datetime) -> type[datetime]:
        class Frozen(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return moment

        return Frozen

    # 23:59 on 1 March and 00:01 on 2 March in Shanghai (UTC+8) are both 1 March in UTC.
    monkeypatch.setattr(audit, "datetime", frozen(datetime(2001, 3, 1, 15, 59, tzinfo=UTC)))
    await record(database, c.id, "test.late_evening")
    monkeypatch.setattr(audit, "datetime", frozen(datetime(2001, 3, 1, 16, 1, tzinfo=UTC)))
    await record(database, c.id, "test.after_midnight")
    monkeypatch.undo()
    await english(client, world.users["manager_c"].login)
    path = f"/t/{c.id}/audit"
    hx = {"HX-Request": "true"}  # the rows alone (the full page also lists every action in its filter)

    first_day = await client.get(path, params={"from": "2001-03-01", "to": "2001-03-01"}, headers=hx)
    assert "test.late_evening" in first_day.text and "test.after_midnight" not in first_day.text
    assert "2001-03-01 23:59:00" in first_day.text  # shown in Asia/Shanghai
    second_day = await client.get(path, params={"from": "2001-03-02", "to": "2001-03-02"}, headers=hx)
    assert "test.after_midnight" in second_day.text and "test.late_evening" not in second_day.text
    assert "2001-03-02 00:01:00" in second_day.text and len(seqs(second_day.text)) == 1
    until = await client.get(path, params={"to": "2001-03-01"}, headers=hx)
    assert seqs(until.text) == seqs(first_day.text) and len(seqs(until.text)) == 1
    assert await audit.verify(database, tenant_id=c.id) == []


async def test_a_broken_chain_shows_where_it_breaks(
    client: AsyncTestClient, database: Database, world: World, settings: Settings, db_kind: str
) -> None:
    c = world.tenants["c"]
    await record(database, c.id, "test.step", 3)
    target = (await chain_of(database, c.id))[-2].seq
    owner = create_async_engine(settings.migration_database_url or settings.database_url)
    try:
        async with owner.begin() as conn:
            if db_kind == "postgres":
                await conn.execute(
                    text(
                        "select set_config('portal.scope_kind', 'tenant', true),"
                        " set_config('portal.tenant_ids', :t, true)"
                    ),
                    {"t": str(c.id)},
                )
            await conn.execute(
                text("update audit_entry set actor = 'someone else' where chain = :c and seq = :s"),
                {"c": str(c.id), "s": target},
            )
    finally:
        await owner.dispose()
    await english(client, world.users["manager_c"].login)
    page = await client.get(f"/t/{c.id}/audit")
    assert page.status_code == 200
    assert f"Chain broken at #{target}" in page.text and "Chain verified" not in page.text


# -- cross-tenant reads -------------------------------------------------------------------------------


async def test_regulator_reads_land_in_each_read_tenants_chain(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, b, c = world.tenants["a"], world.tenants["b"], world.tenants["c"]
    regulator = world.users["regulator"]
    before_c = len(await chain_of(database, c.id))
    await sign_in(client, regulator.login)
    assert (await client.get(f"/t/{a.id}", headers={"X-Request-ID": "reg-home"})).status_code == 200
    assert (await client.get("/tenants", headers={"X-Request-ID": "reg-list"})).status_code == 200
    assert (
        await client.get(f"/api/v1/tenants/{a.id}", headers={"X-Request-ID": "reg-api"})
    ).status_code == 200
    listing = await client.get("/api/v1/tenants/", headers={"X-Request-ID": "reg-api-list"})
    assert {t["code"] for t in listing.json()["items"]} == {a.code, b.code}

    reads = [e for e in await chain_of(database, a.id) if e.actor_user_id == regulator.id]
    assert [(e.action, e.request_id, e.detail) for e in reads] == [
        ("tenant.read", "reg-home", {"as": "regulator", "via": "web"}),
        ("tenant.list_read", "reg-list", {"as": "regulator", "via": "web"}),
        ("tenant.read", "reg-api", {"as": "regulator", "via": "api"}),
        ("tenant.list_read", "reg-api-list", {"as": "regulator", "via": "api"}),
    ]
    assert all(e.ip and regulator.login in e.actor and e.object_id == str(a.id) for e in reads)
    b_reads = [e.request_id for e in await chain_of(database, b.id) if e.actor_user_id == regulator.id]
    assert b_reads == ["reg-list", "reg-api-list"]  # b was on both lists, never opened
    assert len(await chain_of(database, c.id)) == before_c  # outside the district: never read
    for tenant in (a, b):
        assert await audit.verify(database, tenant_id=tenant.id) == []


async def test_warden_and_insurer_reads_are_recorded(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, c = world.tenants["a"], world.tenants["c"]
    await sign_in(client, world.users["warden"].login)
    assert (await client.get(f"/t/{a.id}")).status_code == 200
    last = (await chain_of(database, a.id))[-1]
    assert (last.action, last.actor_user_id, last.detail["as"]) == (
        "tenant.read",
        world.users["warden"].id,
        "warden",
    )
    await sign_in(client, world.users["insurer"].login)
    assert (await client.get(f"/api/v1/tenants/{c.id}")).status_code == 200
    last = (await chain_of(database, c.id))[-1]
    assert (last.action, last.actor_user_id, last.detail["as"]) == (
        "tenant.read",
        world.users["insurer"].id,
        "insurer",
    )


async def test_a_member_reading_its_own_tenant_leaves_no_read_entry(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    before = len(await chain_of(database, a.id))
    await sign_in(client, world.users["manager_a"].login)
    for path in (f"/t/{a.id}", "/tenants", f"/api/v1/tenants/{a.id}", "/api/v1/tenants/", f"/t/{a.id}/audit"):
        assert (await client.get(path)).status_code == 200, path
    assert len(await chain_of(database, a.id)) == before


async def test_every_page_of_a_tenant_read_from_outside_is_recorded_without_the_page_asking(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    """One mechanism (identity/reads.py), not each route remembering: the hazard and self-check pages never
    record anything themselves, and still leave their read; a page that answers 404 leaves none."""
    a = world.tenants["a"]
    regulator = world.users["regulator"]
    await sign_in(client, regulator.login)
    pages = {
        "hazards": f"/t/{a.id}/hazards/",
        "selfchecks": f"/t/{a.id}/selfchecks/",
        "photos": f"/t/{a.id}/photos",
    }
    for name, path in pages.items():
        assert (await client.get(path, headers={"X-Request-ID": f"walk-{name}"})).status_code == 200, path
    missing = await client.get(f"/t/{a.id}/hazards/{uuid.uuid4()}", headers={"X-Request-ID": "walk-404"})
    assert missing.status_code == 404
    reads = {e.request_id: e for e in await chain_of(database, a.id) if e.actor_user_id == regulator.id}
    for name in pages:
        entry = reads[f"walk-{name}"]
        assert (entry.action, entry.detail) == ("tenant.read", {"as": "regulator", "via": "web"})
    assert "walk-404" not in reads
    assert await audit.verify(database, tenant_id=a.id) == []
