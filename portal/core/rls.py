"""PostgreSQL row-level security DDL, used by migrations (the second enforcement of DESIGN section 6).

Tenant-owned tables call ``portal_scope_tenant_ids()`` through a scalar sub-select, so PostgreSQL evaluates
it once per statement (an InitPlan) and can still use the ``tenant_id`` index. The ``tenant`` table has its
own policy written on its columns (it cannot call the function: the function reads ``tenant``, which would
recurse); the function's read of ``tenant`` is itself filtered by that policy, so it yields exactly the
tenants in scope.
"""

from __future__ import annotations

# ruff: noqa: S608  (DDL assembled from the constants below, never from input)

# Each scope kind has its own setting (only the active kind's is non-empty), so no cast ever sees another
# kind's value: PostgreSQL does not promise to evaluate AND/OR operands in order.
_KIND = "current_setting('portal.scope_kind', true)"
_TENANTS = "string_to_array(nullif(current_setting('portal.tenant_ids', true), ''), ',')::uuid[]"
_GRIDS = "string_to_array(nullif(current_setting('portal.grid_ids', true), ''), ',')::uuid[]"
_PATH = "nullif(current_setting('portal.jurisdiction_path', true), '')"
_PATH_LIKE = f"replace(replace({_PATH}, '_', '\\_'), '%', '\\%') || '%'"


def _scope_function(*, options: str, tenant_table: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION portal_scope_tenant_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE{options} AS $$
BEGIN
  IF {_KIND} IN ('tenant', 'tenants') THEN
    RETURN coalesce({_TENANTS}, '{{}}'::uuid[]);
  END IF;
  -- Reads tenant under tenant's own policy, which applies the same grids/jurisdiction settings.
  RETURN ARRAY(SELECT t.id FROM {tenant_table} t);
END $$;
"""


# No ``SET search_path`` clause: it makes PostgreSQL save and restore the setting around every call, which
# cost 4-6 µs per tenant-owned table in a statement (measured with asyncpg, the policy's whole overhead was
# 7-9 µs, 1-5 µs without it). The one table the function reads is schema-qualified instead. The clause
# guarded nothing here: the function is SECURITY INVOKER, and whoever can run SQL as the app role can set
# the scope's settings themselves.
SCOPE_FUNCTION = _scope_function(options="", tenant_table="public.tenant")
# As migration 0001 created it (0008 replaced it with :data:`SCOPE_FUNCTION`; 0008's downgrade restores it).
SCOPE_FUNCTION_0001 = _scope_function(options=" SET search_path = public, pg_temp", tenant_table="tenant")

DROP_SCOPE_FUNCTION = "DROP FUNCTION IF EXISTS portal_scope_tenant_ids()"

# A NOLOGIN group that receives the table grants; the app login role and the system role are its members
# (infra/postgres/roles.sql). Granting to a group keeps migrations free of deployment-specific role names.
GRANTS = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal_rw') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portal_rw';
    -- The audit log is append-only for the application: only its owner could change a row.
    IF EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'audit_entry') THEN
      EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_entry FROM portal_rw';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'portal_scope_tenant_ids') THEN
      EXECUTE 'GRANT EXECUTE ON FUNCTION portal_scope_tenant_ids() TO portal_rw';
    END IF;
  END IF;
END $$;
"""


TENANT_POLICY = (
    f"({_KIND} IN ('tenant', 'tenants') AND id = ANY ({_TENANTS}))"
    f" OR ({_KIND} = 'grids' AND grid_id = ANY ({_GRIDS}))"
    f" OR ({_KIND} = 'jurisdiction' AND jurisdiction_path LIKE {_PATH_LIKE})"
)


def enable_tenant_table() -> list[str]:
    return [
        "ALTER TABLE tenant ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE tenant FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_tenant_scope ON tenant USING ({TENANT_POLICY}) WITH CHECK ({TENANT_POLICY})",
    ]


def enable_statements(table: str, column: str = "tenant_id") -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {table}_tenant_scope ON {table} "
        f"USING ({column} = ANY ((SELECT portal_scope_tenant_ids())::uuid[])) "
        f"WITH CHECK ({column} = ANY ((SELECT portal_scope_tenant_ids())::uuid[]))",
    ]


def enable_platform_rows(table: str) -> list[str]:
    """Like :func:`enable_statements`, but rows without a tenant (the platform chain) may be written from
    any scope, and read only by the system role."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {table}_tenant_scope ON {table} "
        f"USING (tenant_id = ANY ((SELECT portal_scope_tenant_ids())::uuid[])) "
        f"WITH CHECK (tenant_id IS NULL OR tenant_id = ANY ((SELECT portal_scope_tenant_ids())::uuid[]))",
    ]


def disable_statements(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS {table}_tenant_scope ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]
