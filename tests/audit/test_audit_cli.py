"""``portal audit verify`` as an operator runs it: the installed script, in a subprocess, on the test DB.

Tampering is done the only way it can be: raw SQL as the table owner (on PostgreSQL the application's role
may not UPDATE or DELETE audit entries at all, which is asserted too).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from portal.audit import services as audit
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.audit import AuditEntry
from tests.fixtures.cli import run_portal
from tests.fixtures.factories import World, build_world


async def run_verify(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await run_portal(settings, cwd, "audit", "verify", *args)


async def record_steps(database: Database, tenant_id: uuid.UUID, n: int = 3) -> int:
    """Append ``n`` entries to the tenant's chain; returns the chain's last seq."""
    async with database.session(Scope.tenant(tenant_id)) as s:
        for i in range(n):
            last = await audit.record(s, "test.step", tenant_id=tenant_id, detail={"i": i})
    return last.seq


async def last_seq(database: Database, tenant_id: uuid.UUID) -> int:
    async with database.session(Scope.tenant(tenant_id)) as s:
        value = (
            await s.execute(select(func.max(AuditEntry.seq)).where(AuditEntry.chain == str(tenant_id)))
        ).scalar_one()
    return int(value)


async def as_owner(settings: Settings, db_kind: str, tenant_id: uuid.UUID, sql: str, **params: Any) -> int:
    """Run ``sql`` as the table owner inside the tenant's RLS scope (FORCE'd RLS binds the owner too)."""
    engine = create_async_engine(settings.migration_database_url or settings.database_url)
    try:
        async with engine.begin() as conn:
            if db_kind == "postgres":
                await conn.execute(
                    text(
                        "select set_config('portal.scope_kind', 'tenant', true),"
                        " set_config('portal.tenant_ids', :t, true)"
                    ),
                    {"t": str(tenant_id)},
                )
            result = await conn.execute(text(sql), params)
            return int(getattr(result, "rowcount", 0) or 0)
    finally:
        await engine.dispose()


async def test_an_untouched_chain_verifies(
    database: Database, world: World, settings: Settings, tmp_path: Path
) -> None:
    a = world.tenants["a"]
    await record_steps(database, a.id)
    entries = await last_seq(database, a.id) + 1
    by_code = await run_verify(settings, tmp_path, "--tenant", a.code)
    assert by_code.returncode == 0, by_code.stdout + by_code.stderr
    lines = by_code.stdout.splitlines()
    assert lines[0] == f"ok      {a.id} ({a.code}): {entries} entries"
    assert lines[-1] == "checked 1 chain: 1 intact, 0 broken"
    by_id = await run_verify(settings, tmp_path, "--tenant", str(a.id))
    assert by_id.returncode == 0 and by_id.stdout == by_code.stdout
    # Registering tenants wrote to the platform chain; it is intact too (and listed first with --tenant).
    both = await run_verify(settings, tmp_path, "--tenant", a.code, "--platform")
    assert both.returncode == 0, both.stdout + both.stderr
    assert both.stdout.splitlines()[0].startswith("ok      platform: ")
    unknown = await run_verify(settings, tmp_path, "--tenant", "NO-SUCH-UNIT")
    assert unknown.returncode == 2 and "NO-SUCH-UNIT" in unknown.stderr


async def test_a_changed_row_is_named_with_its_chain_and_seq(
    database: Database, world: World, settings: Settings, db_kind: str, tmp_path: Path
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    last = await record_steps(database, b.id)
    target = last - 1
    changed = await as_owner(
        settings,
        db_kind,
        b.id,
        "update audit_entry set action = 'forged' where chain = :c and seq = :s",
        c=str(b.id),
        s=target,
    )
    assert changed == 1
    result = await run_verify(settings, tmp_path, "--tenant", b.code)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"BROKEN  {b.id} ({b.code}): {last + 1} entries" in result.stdout
    assert (
        f"  first broken link: chain={b.id} seq={target} "
        "reason=content does not match its hash (the entry was changed)"
    ) in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "checked 1 chain: 0 intact, 1 broken"
    # All chains (the default) names the same first broken link and fails too ...
    everything = await run_verify(settings, tmp_path)
    assert everything.returncode == 1
    assert f"chain={b.id} seq={target} " in everything.stdout
    assert f"ok      {a.id} ({a.code}):" in everything.stdout
    # ... while the untouched neighbour alone still verifies.
    assert (await run_verify(settings, tmp_path, "--tenant", a.code)).returncode == 0


async def test_a_deleted_row_leaves_a_gap(
    database: Database, world: World, settings: Settings, db_kind: str, tmp_path: Path
) -> None:
    c = world.tenants["c"]
    last = await record_steps(database, c.id, 4)
    gap = last - 2
    removed = await as_owner(
        settings, db_kind, c.id, "delete from audit_entry where chain = :c and seq = :s", c=str(c.id), s=gap
    )
    assert removed == 1
    result = await run_verify(settings, tmp_path, "--tenant", str(c.id))
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f"  first broken link: chain={c.id} seq={gap} reason=entry {gap} is missing (found {gap + 1})"
        in result.stdout.splitlines()
    )


async def test_a_removed_last_row_no_longer_matches_the_head(
    database: Database, world: World, settings: Settings, db_kind: str, tmp_path: Path
) -> None:
    a = world.tenants["a"]
    last = await record_steps(database, a.id, 2)
    removed = await as_owner(
        settings, db_kind, a.id, "delete from audit_entry where chain = :c and seq = :s", c=str(a.id), s=last
    )
    assert removed == 1
    result = await run_verify(settings, tmp_path, "--tenant", a.code)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        f"  first broken link: chain={a.id} seq={last - 1} "
        "reason=entries were removed after this one (head does not match)"
    ) in result.stdout.splitlines()


async def test_the_app_role_may_not_change_or_remove_entries(pg_only_database: Database) -> None:
    """PostgreSQL: UPDATE, DELETE and TRUNCATE on audit_entry are refused to the application's login, in a
    tenant's own scope and in the system scope (which switches to portal_system) alike."""
    world = await build_world(pg_only_database)
    a = world.tenants["a"]
    await record_steps(pg_only_database, a.id, 1)
    statements = (
        "update audit_entry set action = 'forged' where chain = :c",
        "delete from audit_entry where chain = :c",
        "truncate audit_entry",
    )
    for scope in (Scope.tenant(a.id), Scope.system("test: tamper attempt")):
        for sql in statements:
            with pytest.raises(DBAPIError, match="permission denied for table audit_entry"):
                async with pg_only_database.session(scope) as s:
                    await s.execute(text(sql), {"c": str(a.id)})
    assert await audit.verify(pg_only_database, tenant_id=a.id) == []
