"""scope function without a SET clause

The RLS policies call ``portal_scope_tenant_ids()`` once per tenant-owned table in a statement; its
``SET search_path`` clause made PostgreSQL save and restore the setting on every call (most of the policies'
cost). See ``portal.core.rls.SCOPE_FUNCTION``. PostgreSQL only; nothing to do on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:20:00
"""

from collections.abc import Sequence

from alembic import op

from portal.core import rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(rls.SCOPE_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(rls.SCOPE_FUNCTION_0001)
