"""The audit log: hash-chained per tenant, appendable from the scopes that act, tamper-evident."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text

from portal.audit import services as audit
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.audit import AuditEntry
from tests.fixtures.factories import World


async def test_entries_chain_per_tenant_and_verify(database: Database, world: World) -> None:
    a = world.tenants["a"]
    actor = audit.Actor(label="管理人a", user_id=world.users["manager_a"].id, ip="127.0.0.1", request_id="r1")
    async with database.session(Scope.tenant(a.id)) as s:
        first = await audit.record(
            s, "tenant.update", tenant_id=a.id, object_type="tenant", object_id=a.id, actor=actor
        )
        second = await audit.record(s, "member.invite", tenant_id=a.id, detail={"role": "staff"}, actor=actor)
    assert second.seq == first.seq + 1 and second.prev_hash == first.hash
    assert await audit.verify(database, tenant_id=a.id) == []


async def test_regulator_reads_land_in_each_tenant_chain(database: Database, world: World) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    async with database.session(Scope.jurisdiction(world.d1.path)) as s:
        await audit.record_reads(s, [a.id, b.id, a.id], "tenant.read")
    async with database.session(Scope.tenant(b.id)) as s:
        rows = (await s.execute(select(AuditEntry.action, AuditEntry.tenant_id))).all()
    assert ("tenant.read", b.id) in rows and all(t == b.id for _a, t in rows)


async def test_platform_chain_from_a_tenant_scope_is_invisible_to_tenants(
    database: Database, world: World
) -> None:
    a = world.tenants["a"]
    async with database.session(Scope.tenant(a.id)) as s:
        entry = await audit.record(s, "platform.test", tenant_id=None)
        assert entry.chain == "platform"
    async with database.session(Scope.tenant(a.id)) as s:
        seen = (await s.execute(select(AuditEntry.id).where(AuditEntry.id == entry.id))).first()
    assert seen is None
    assert await audit.verify(database, platform=True) == []


async def test_concurrent_appends_keep_the_chain_intact(database: Database, world: World) -> None:
    c = world.tenants["c"]

    async def append(i: int) -> None:
        async with database.session(Scope.tenant(c.id)) as s:
            await audit.record(s, "concurrent", tenant_id=c.id, detail={"i": i})

    await asyncio.gather(*(append(i) for i in range(8)))
    assert await audit.verify(database, tenant_id=c.id) == []


async def test_a_tampered_row_is_detected(database: Database, world: World, db_kind: str) -> None:
    b = world.tenants["b"]
    async with database.session(Scope.tenant(b.id)) as s:
        for i in range(3):
            await audit.record(s, "step", tenant_id=b.id, detail={"i": i})
    async with database.session(Scope.tenant(b.id)) as s:
        target = (
            await s.execute(
                select(AuditEntry.id)
                .where(AuditEntry.chain == str(b.id))
                .order_by(AuditEntry.seq)
                .offset(1)
                .limit(1)
            )
        ).scalar_one()
    # Raw SQL as the table owner: the app role itself may not UPDATE the log (PostgreSQL).
    url = database.settings.migration_database_url or database.settings.database_url
    from sqlalchemy.ext.asyncio import create_async_engine

    owner = create_async_engine(url)
    async with owner.begin() as conn:
        if db_kind == "postgres":
            await conn.execute(
                text(
                    "select set_config('portal.scope_kind', 'tenant', true),"
                    " set_config('portal.tenant_ids', :t, true)"
                ),
                {"t": str(b.id)},
            )
        await conn.execute(
            text("update audit_entry set action = 'forged' where id = :i"),
            {"i": target if db_kind == "postgres" else target.bytes},
        )
    await owner.dispose()
    breaks = await audit.verify(database, tenant_id=b.id)
    assert len(breaks) == 1 and breaks[0].chain == str(b.id) and "changed" in breaks[0].reason
