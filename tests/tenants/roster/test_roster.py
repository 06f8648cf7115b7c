"""Roster management over HTTP on both databases: change a role, remove someone after a confirmation page,
and every refusal (last responsible person, a manager touching the responsible role, staff, another
tenant's member, a bad role value) leaving the roster and the audit log as they were."""

from __future__ import annotations

import asyncio
import html
import uuid

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text

from portal.audit import services as audit
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.audit import AuditEntry
from portal.models.identity import User
from portal.models.tenants import MemberRole, Tenant
from portal.tenants import services as ts
from portal.tenants.roster import services as roster
from tests.fixtures.brokers import eventually
from tests.fixtures.factories import World, add_person, build_world
from tests.fixtures.web import post_form, sign_in


async def _person(database: Database, tenant: Tenant, role: MemberRole, name: str = "员工") -> User:
    return await add_person(database, tenant.id, role, name)


async def _roster(database: Database, tenant: Tenant) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """(user id, role) → membership id."""
    async with database.session(Scope.tenant(tenant.id)) as s:
        return {(m.user_id, m.role.value): m.membership_id for m in await ts.roster(s, tenant.id)}


async def _membership(database: Database, tenant: Tenant, user: User, role: MemberRole) -> uuid.UUID:
    return (await _roster(database, tenant))[user.id, role.value]


async def _entries(database: Database, tenant: Tenant, action: str) -> list[AuditEntry]:
    async with database.session(Scope.system("test roster: audit")) as s:
        rows = await s.execute(
            select(AuditEntry)
            .where(AuditEntry.chain == str(tenant.id), AuditEntry.action == action)
            .order_by(AuditEntry.seq)
        )
        return list(rows.scalars())


async def _chain_length(database: Database, tenant: Tenant) -> int:
    async with database.session(Scope.system("test roster: audit")) as s:
        rows = await s.execute(select(AuditEntry.seq).where(AuditEntry.chain == str(tenant.id)))
        return len(rows.all())


async def test_manager_changes_a_role_and_the_audit_log_says_so(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    staff = await _person(database, a, MemberRole.STAFF, "小王")
    mid = await _membership(database, a, staff, MemberRole.STAFF)
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["manager_a"].login)
    listing = await client.get(f"/t/{a.id}/people/")
    assert listing.status_code == 200
    assert f'action="/t/{a.id}/people/{mid}/role"' in listing.text and "New role for 小王" in listing.text
    assert f'href="/t/{a.id}/people/{mid}/remove"' in listing.text and 'href="/invitations"' in listing.text

    changed = await post_form(client, f"/t/{a.id}/people/{mid}/role", {"role": "manager"})
    assert (
        changed.status_code == 303 and changed.headers["location"] == f"/t/{a.id}/people/?done=role_changed"
    )
    assert (await client.get(changed.headers["location"])).text.count("The role was changed.") == 1
    assert (await _roster(database, a))[staff.id, "manager"] == mid  # the same row, a new role
    [entry] = await _entries(database, a, "member.role_changed")
    assert entry.actor_user_id == world.users["manager_a"].id and entry.object_id == str(mid)
    assert entry.detail == {
        "user_id": str(staff.id),
        "display_name": "小王",
        "from": "staff",
        "to": "manager",
    }
    assert await audit.verify(database, tenant_id=a.id) == []
    # The home page lists the new role, with the link to manage the roster.
    home = await client.get(f"/t/{a.id}")
    assert "<tr><td>小王</td><td>manager</td></tr>" in home.text


async def test_responsible_person_removes_someone_after_confirming(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    staff = await _person(database, a, MemberRole.STAFF, "小李")
    mid = await _membership(database, a, staff, MemberRole.STAFF)
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["both"].login, ctx=f"member:{a.id}")  # the responsible person
    confirm = await client.get(f"/t/{a.id}/people/{mid}/remove")
    assert confirm.status_code == 200
    assert "Remove 小李 as staff?" in confirm.text and "Yes, remove" in confirm.text
    assert f'<form method="post" action="/t/{a.id}/people/{mid}/remove"' in confirm.text
    assert (staff.id, "staff") in await _roster(database, a)  # asking changes nothing

    removed = await post_form(client, f"/t/{a.id}/people/{mid}/remove", {})
    assert removed.status_code == 303 and removed.headers["location"] == f"/t/{a.id}/people/?done=removed"
    assert (staff.id, "staff") not in await _roster(database, a)
    [entry] = await _entries(database, a, "member.removed")
    assert entry.actor_user_id == world.users["both"].id
    assert entry.detail == {
        "user_id": str(staff.id),
        "display_name": "小李",
        "role": "staff",
        "remaining_roles": [],
    }
    assert (await client.get(f"/t/{a.id}/people/{mid}/remove")).status_code == 404  # gone
    # The removed person's session loses the unit on their next request.
    await sign_in(client, staff.login, ctx=f"member:{a.id}")
    assert (await client.get(f"/t/{a.id}")).status_code in (403, 404)


async def test_the_last_responsible_person_stays(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    responsible = world.users["both"]
    mid = await _membership(database, a, responsible, MemberRole.RESPONSIBLE)
    before = await _chain_length(database, a)
    client.cookies.set("lang", "en")
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    demoted = await post_form(client, f"/t/{a.id}/people/{mid}/role", {"role": "manager"})
    assert demoted.status_code == 422
    assert "两边的人 is the unit's only responsible person" in html.unescape(demoted.text)
    assert "Nothing was changed." in demoted.text
    # The confirmation page says so instead of offering the button; posting anyway is refused too.
    confirm = await client.get(f"/t/{a.id}/people/{mid}/remove")
    assert (
        confirm.status_code == 200
        and 'id="remove-refusal"' in confirm.text
        and "Yes, remove" not in confirm.text
    )
    removed = await post_form(client, f"/t/{a.id}/people/{mid}/remove", {})
    assert removed.status_code == 422 and "only responsible person" in removed.text
    assert (responsible.id, "responsible") in await _roster(database, a)
    assert await _chain_length(database, a) == before

    # The responsible person is offered the responsible role for everyone.
    listing = await client.get(f"/t/{a.id}/people/")
    assert listing.text.count('<option value="responsible"') == len(await _roster(database, a))
    # With a second responsible person appointed, the first may step down to manager.
    second = await _person(database, a, MemberRole.STAFF, "新责任人")
    second_mid = await _membership(database, a, second, MemberRole.STAFF)
    appointed = await post_form(client, f"/t/{a.id}/people/{second_mid}/role", {"role": "responsible"})
    assert appointed.status_code == 303
    stepped = await post_form(client, f"/t/{a.id}/people/{mid}/role", {"role": "manager"})
    assert stepped.status_code == 303 and stepped.headers["location"].startswith(f"/t/{a.id}/people/")
    roles = await _roster(database, a)
    assert (responsible.id, "manager") in roles and (second.id, "responsible") in roles
    assert [e.detail["to"] for e in await _entries(database, a, "member.role_changed")] == [
        "responsible",
        "manager",
    ]


async def test_a_manager_neither_appoints_nor_withdraws_a_responsible_person(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    responsible_mid = await _membership(database, a, world.users["both"], MemberRole.RESPONSIBLE)
    staff = await _person(database, a, MemberRole.STAFF)
    staff_mid = await _membership(database, a, staff, MemberRole.STAFF)
    before = await _roster(database, a)
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["manager_a"].login)
    # The page offers no such change (the service refuses it anyway: posted by hand below).
    listing = await client.get(f"/t/{a.id}/people/")
    assert '<option value="responsible"' not in listing.text
    assert f'action="/t/{a.id}/people/{responsible_mid}/role"' not in listing.text
    assert "Only a responsible person changes or removes a responsible person." in listing.text
    for path, form in (
        (f"/t/{a.id}/people/{responsible_mid}/role", {"role": "staff"}),
        (f"/t/{a.id}/people/{staff_mid}/role", {"role": "responsible"}),
        (f"/t/{a.id}/people/{responsible_mid}/remove", {}),
    ):
        refused = await post_form(client, path, form)
        assert refused.status_code == 422, path
        assert "Only a responsible person appoints or withdraws a responsible person." in refused.text
    assert await _roster(database, a) == before

    # Unit b has no responsible person at all: its manager may appoint the first one.
    await sign_in(client, world.users["manager_b"].login)
    both_in_b = await _membership(database, b, world.users["both"], MemberRole.STAFF)
    first = await post_form(client, f"/t/{b.id}/people/{both_in_b}/role", {"role": "responsible"})
    assert first.status_code == 303
    assert (world.users["both"].id, "responsible") in await _roster(database, b)


async def test_bad_role_same_role_and_a_role_held_twice_change_nothing(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    owner = await _person(database, a, MemberRole.MANAGER, "店主")
    async with database.session(Scope.system("test roster: second role")) as s:
        t, u = await s.get(Tenant, a.id), await s.get(User, owner.id)
        await ts.add_member(s, t, u, MemberRole.STAFF)  # type: ignore[arg-type]
    staff_mid = await _membership(database, a, owner, MemberRole.STAFF)
    before, chain = await _roster(database, a), await _chain_length(database, a)
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["manager_a"].login)
    cases = {
        "owner": "Choose one of the roles: responsible person, manager or staff.",
        "": "Choose one of the roles: responsible person, manager or staff.",
        "staff": "店主 already has this role. Nothing was changed.",
        "manager": "店主 already holds this role. To take the other role away, remove it instead",
    }
    for value, message in cases.items():
        refused = await post_form(client, f"/t/{a.id}/people/{staff_mid}/role", {"role": value})
        assert refused.status_code == 422 and message in refused.text, value
        assert 'role="alert"' in refused.text
    assert await _roster(database, a) == before and await _chain_length(database, a) == chain
    # Removing one of two roles keeps the other: the confirmation page says so.
    confirm = await client.get(f"/t/{a.id}/people/{staff_mid}/remove")
    assert "They keep their other roles in the unit." in confirm.text
    assert (await post_form(client, f"/t/{a.id}/people/{staff_mid}/remove", {})).status_code == 303
    roles = await _roster(database, a)
    assert (owner.id, "manager") in roles and (owner.id, "staff") not in roles
    [entry] = await _entries(database, a, "member.removed")
    assert entry.detail["remaining_roles"] == ["manager"]


async def test_staff_cannot_manage_and_foreign_members_are_404(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    staff = await _person(database, a, MemberRole.STAFF)
    manager_mid = await _membership(database, a, world.users["manager_a"], MemberRole.MANAGER)
    b_mid = await _membership(database, b, world.users["manager_b"], MemberRole.MANAGER)
    before_a, before_b = await _roster(database, a), await _roster(database, b)
    chain_a, chain_b = await _chain_length(database, a), await _chain_length(database, b)

    client.cookies.set("lang", "en")
    await sign_in(client, staff.login)
    assert (await client.get(f"/t/{a.id}/people/")).status_code == 403
    assert (await client.get(f"/t/{a.id}/people/{manager_mid}/remove")).status_code == 403
    for path, form in (
        (f"/t/{a.id}/people/{manager_mid}/role", {"role": "staff"}),
        (f"/t/{a.id}/people/{manager_mid}/remove", {}),
    ):
        refused = await post_form(client, path, form)
        assert refused.status_code == 403 and "You are not allowed to do this." in refused.text
    assert f'href="/t/{a.id}/people/"' not in (await client.get(f"/t/{a.id}")).text

    # Tenant b's membership, through tenant a's URL or tenant b's own: 404 for tenant a's manager.
    await sign_in(client, world.users["manager_a"].login)
    for path in (f"/t/{a.id}/people/{b_mid}", f"/t/{b.id}/people/{b_mid}"):
        assert (await post_form(client, f"{path}/role", {"role": "staff"})).status_code == 404
        assert (await post_form(client, f"{path}/remove", {})).status_code == 404
        assert (await client.get(f"{path}/remove")).status_code == 404
    assert (await client.get(f"/t/{b.id}/people/")).status_code == 404
    assert (
        await post_form(client, f"/t/{a.id}/people/{uuid.uuid4()}/role", {"role": "staff"})
    ).status_code == 404
    # Outside roles never manage a roster, even in their scope.
    await sign_in(client, world.users["regulator"].login)
    assert (await client.get(f"/t/{a.id}/people/")).status_code == 403
    assert await _roster(database, a) == before_a and await _roster(database, b) == before_b
    assert await _chain_length(database, a) == chain_a and await _chain_length(database, b) == chain_b


async def test_a_manager_who_leaves_the_unit_lands_on_their_own_home(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    manager = world.users["manager_a"]
    mid = await _membership(database, a, manager, MemberRole.MANAGER)
    client.cookies.set("lang", "en")
    await sign_in(client, manager.login)
    confirm = await client.get(f"/t/{a.id}/people/{mid}/remove")
    assert "This is your last role in the unit" in confirm.text
    left = await post_form(client, f"/t/{a.id}/people/{mid}/remove", {})
    assert left.status_code == 303 and left.headers["location"] == "/"
    assert (await client.get(f"/t/{a.id}/people/")).status_code == 403  # no role there any more
    assert (manager.id, "manager") not in await _roster(database, a)


async def _someone_waits_for_a_lock(database: Database) -> bool:
    """PostgreSQL's word that a session of this database is blocked on a lock (the roster lock)."""
    async with database.engine.connect() as conn:
        waiting = await conn.execute(
            text(
                "select count(*) from pg_stat_activity "
                "where datname = current_database() and wait_event_type = 'Lock'"
            )
        )
        return bool(waiting.scalar_one())


async def test_two_responsible_people_demoting_each_other_at_once_leave_one(
    pg_only_database: Database,
) -> None:
    """The roster lock: the second change waits for the first, then sees the roster as it now is."""
    database = pg_only_database
    world = await build_world(database)
    a = world.tenants["a"]
    first = world.users["both"]
    second = await _person(database, a, MemberRole.RESPONSIBLE, "第二责任人")
    first_mid = await _membership(database, a, first, MemberRole.RESPONSIBLE)
    second_mid = await _membership(database, a, second, MemberRole.RESPONSIBLE)

    async def demote(membership_id: uuid.UUID, actor: uuid.UUID) -> None:
        async with database.session(Scope.tenant(a.id)) as s:
            await roster.change_role(s, a.id, membership_id, "manager", actor_id=actor)

    async with database.session(Scope.tenant(a.id)) as s1:
        await roster.change_role(s1, a.id, second_mid, "manager", actor_id=first.id)
        other = asyncio.create_task(demote(first_mid, second.id))
        await eventually(lambda: _someone_waits_for_a_lock(database), what="the second change waiting")
        assert not other.done()  # waiting for the first change's transaction
    with pytest.raises(roster.RosterRefused) as refused:
        await other
    assert refused.value.code == "responsible_only"  # the second person is a manager now
    roles = await _roster(database, a)
    assert (first.id, "responsible") in roles and (second.id, "manager") in roles
