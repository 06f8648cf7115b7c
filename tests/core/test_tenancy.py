"""The scope fails closed, in the ORM on both databases and in PostgreSQL row-level security."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.orm import selectinload

from portal.core.db import Database
from portal.core.tenancy import Scope, ScopeMissing, ScopeViolation
from portal.models.identity import User
from portal.models.tenants import MemberRole, Membership, Tenant
from tests.fixtures.factories import World, build_world


async def test_scopeless_query_on_tenant_owned_model_raises(database: Database, world: World) -> None:
    async with database.sessionmaker() as session:
        with pytest.raises(ScopeMissing):
            await session.execute(select(Membership))
        with pytest.raises(ScopeMissing):
            await session.execute(select(func.count(Tenant.id)))
        with pytest.raises(ScopeMissing):
            await session.get(Tenant, world.tenants["a"].id)
        with pytest.raises(ScopeMissing):
            await session.execute(update(Membership).values(role=MemberRole.STAFF))
        # Tables that belong to nobody need no scope.
        assert (await session.execute(select(User).where(User.id == world.users["both"].id))).scalar_one()


async def test_tenant_scope_filters_selects_and_get(database: Database, world: World) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    async with database.session(Scope.tenant(a.id)) as session:
        tenant_ids = set((await session.execute(select(Membership.tenant_id))).scalars())
        assert tenant_ids == {a.id}
        assert await session.get(Tenant, b.id) is None
        assert (await session.get(Tenant, a.id)) is not None


async def test_one_statement_object_serves_each_tenant_its_own_rows(database: Database, world: World) -> None:
    """Hot statements are built once and the member's criteria are attached once per statement, with the
    tenant as a bound parameter: the same objects, executed for tenant A, then B, then A again (also as a
    bulk UPDATE), must each time see exactly that tenant's rows, never the previous run's."""
    a, b = world.tenants["a"], world.tenants["b"]
    memberships = select(Membership.tenant_id, Membership.user_id)  # no tenant filter of its own
    tenants = select(Tenant.id)
    touch = update(Membership).values(role=Membership.role)  # changes nothing, counts what it may touch
    async with database.session(Scope.system("test")) as session:
        count = select(func.count()).select_from(Membership).where(Membership.tenant_id == bindparam("t"))
        expected = {t.id: (await session.execute(count, {"t": t.id})).scalar_one() for t in (a, b)}
    assert expected[a.id] and expected[b.id]
    for tenant in (a, b, a, b):
        async with database.session(Scope.tenant(tenant.id)) as session:
            seen = {row.tenant_id for row in (await session.execute(memberships)).all()}
            assert seen == {tenant.id}
            assert set((await session.execute(tenants)).scalars()) == {tenant.id}
            touched = (
                await session.execute(touch, execution_options={"synchronize_session": False})
            ).rowcount
            assert touched == expected[tenant.id]
    async with database.session(Scope.system("test")) as session:  # the same objects, no criteria
        assert {row.tenant_id for row in (await session.execute(memberships)).all()} >= {a.id, b.id}


def test_the_member_criteria_parameter_compares_like_a_plain_object() -> None:
    """SQLAlchemy keys a cached statement's parameter values by parameter; the criteria's annotated copy
    collides with its original there. The scope's parameter settles that with a bool (equal exactly when
    the hashes are, as SQLAlchemy's own expression would say) instead of building SQL, and is still an
    ordinary operand on the right of a comparison."""
    from portal.core.tenancy import TENANT_PARAM, _ScopeParameter

    param = _ScopeParameter(TENANT_PARAM)
    copy = param._annotate({"for_loader_criteria": "x"})
    assert (copy == param) is True and (param == copy) is True
    assert {param: 1}.get(copy) == 1
    assert (param == _ScopeParameter(TENANT_PARAM)) is False
    clause = Membership.tenant_id == param
    assert "tenant_id = :portal_scope_tenant_id" in str(clause)


async def test_relationship_loads_are_scoped(database: Database, world: World) -> None:
    both = world.users["both"]
    async with database.session(Scope.tenant(world.tenants["a"].id)) as session:
        user = (
            await session.execute(
                select(User).where(User.id == both.id).options(selectinload(User.memberships))
            )
        ).scalar_one()
        assert {m.tenant_id for m in user.memberships} == {world.tenants["a"].id}
    async with database.session(Scope.system("test")) as session:
        user = (
            await session.execute(
                select(User).where(User.id == both.id).options(selectinload(User.memberships))
            )
        ).scalar_one()
        assert {m.tenant_id for m in user.memberships} == {world.tenants["a"].id, world.tenants["b"].id}


async def test_bulk_update_and_delete_stay_inside_the_scope(database: Database, world: World) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    async with database.session(Scope.tenant(a.id)) as session:
        await session.execute(
            update(Membership)
            .where(Membership.role == MemberRole.STAFF)
            .values(role=MemberRole.MANAGER)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            delete(Membership)
            .where(Membership.user_id == world.users["both"].id)
            .execution_options(synchronize_session=False)
        )
    async with database.session(Scope.system("test")) as session:
        rows = (
            await session.execute(
                select(Membership.tenant_id, Membership.role).where(
                    Membership.user_id == world.users["both"].id
                )
            )
        ).all()
        # Tenant a's membership of "both" was deleted; tenant b's (staff) was neither updated nor deleted.
        assert rows == [(b.id, MemberRole.STAFF)]


async def test_insert_outside_the_scope_is_refused(database: Database, world: World) -> None:
    with pytest.raises(ScopeViolation):
        async with database.session(Scope.tenant(world.tenants["a"].id)) as session:
            session.add(
                Membership(
                    tenant_id=world.tenants["b"].id, user_id=world.users["warden"].id, role=MemberRole.STAFF
                )
            )
            await session.flush()


async def test_regulator_sees_exactly_its_subtree(database: Database, world: World) -> None:
    async with database.session(Scope.jurisdiction(world.d1.path)) as session:
        seen = set((await session.execute(select(Tenant.id))).scalars())
        members = set((await session.execute(select(Membership.tenant_id))).scalars())
    expected = {world.tenants["a"].id, world.tenants["b"].id}
    assert seen == expected
    assert members == expected
    async with database.session(Scope.jurisdiction(world.city.path)) as session:
        assert set((await session.execute(select(Tenant.id))).scalars()) == set(
            t.id for t in world.tenants.values()
        )


async def test_warden_and_insurer_scopes(database: Database, world: World) -> None:
    async with database.session(Scope.grids([world.grids["a"].id])) as session:
        assert set((await session.execute(select(Tenant.id))).scalars()) == {world.tenants["a"].id}
        assert set((await session.execute(select(Membership.tenant_id))).scalars()) == {world.tenants["a"].id}
    async with database.session(Scope.tenants([world.tenants["c"].id])) as session:
        assert set((await session.execute(select(Tenant.id))).scalars()) == {world.tenants["c"].id}
    async with database.session(Scope.tenants([])) as session:
        assert (await session.execute(select(Tenant.id))).first() is None


async def test_raw_sql_is_held_by_row_level_security(pg_only_database: Database) -> None:
    # Row-level security is PostgreSQL's second line; SQLite has only the ORM scope.
    database = pg_only_database
    world = await build_world(database)
    a = world.tenants["a"]
    # text() bypasses the ORM criteria entirely: only RLS stands between the app role and tenant b.
    async with database.session(Scope.tenant(a.id)) as session:
        rows = set((await session.execute(text("select tenant_id from membership"))).scalars())
        tenants = set((await session.execute(text("select id from tenant"))).scalars())
        assert rows == {a.id} and tenants == {a.id}
        with pytest.raises(Exception, match="row-level security"):
            await session.execute(
                text(
                    "insert into membership (id, tenant_id, user_id, role, created_at, updated_at)"
                    " values (gen_random_uuid(), :t, :u, 'staff', now(), now())"
                ),
                {"t": world.tenants["b"].id, "u": world.users["warden"].id},
            )
    async with database.session(None) as session:
        # No scope at all: not one tenant row.
        assert (await session.execute(text("select count(*) from membership"))).scalar_one() == 0
    async with database.session(Scope.jurisdiction(world.d1.path)) as session:
        assert set((await session.execute(text("select id from tenant"))).scalars()) == {
            world.tenants["a"].id,
            world.tenants["b"].id,
        }


async def test_scope_does_not_survive_a_failed_transaction_on_a_pooled_connection(
    pg_only_database: Database,
) -> None:
    # Transaction-local settings are a PostgreSQL matter.
    database = pg_only_database
    world = await build_world(database)
    a = world.tenants["a"]
    for _ in range(5):  # the pool hands the same connections back
        with pytest.raises(RuntimeError):
            async with database.session(Scope.tenant(a.id)) as session:
                await session.execute(select(Tenant.id))
                raise RuntimeError("request failed mid-transaction")
        async with database.session(None) as session:
            assert (await session.execute(text("select count(*) from tenant"))).scalar_one() == 0
            assert (
                await session.execute(text("select current_setting('portal.tenant_ids', true)"))
            ).scalar() in ("", None)


async def test_a_subquery_is_scoped_like_the_statement_around_it(database: Database, world: World) -> None:
    """A count over a subquery (a page's total) sees exactly the rows the page sees: the scope reaches
    tenant-owned tables at any depth of a statement, or the statement is refused."""
    a, b = world.tenants["a"], world.tenants["b"]
    rows = select(Tenant).where(Tenant.id.in_([a.id, b.id]))
    for scope, expected, sees_b in (
        (Scope.tenant(a.id), 1, False),
        (Scope.grids([world.grids["a"].id]), 1, False),
        (Scope.jurisdiction(world.d1.path), 2, True),
        (Scope.tenants([world.tenants["c"].id]), 0, False),
    ):
        async with database.session(scope) as session:
            total = (await session.execute(select(func.count()).select_from(rows.subquery()))).scalar_one()
            assert total == expected, scope
            nested = select(Membership.id).where(
                Membership.tenant_id.in_(select(Tenant.id).where(Tenant.id == b.id).scalar_subquery())
            )
            assert ((await session.execute(nested)).first() is not None) is sees_b, scope
    async with database.sessionmaker() as session:
        with pytest.raises(ScopeMissing):
            await session.execute(select(func.count()).select_from(rows.subquery()))
