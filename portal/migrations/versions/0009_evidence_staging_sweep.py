"""evidence: staging keys swept after their upload policy expired

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_upload_slot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("swept_at", DateTimeUTC(timezone=True), nullable=True))
    # Before this revision a completed slot's key WAS its stored original's key: sweeping it would delete
    # the original. Every slot already settled counts as swept; a pending one may still complete (its
    # bytes then go to a content-addressed key like any other) and is swept as a staging key.
    op.execute("UPDATE evidence_upload_slot SET swept_at = expires_at WHERE status <> 'pending'")
    op.create_index(
        "ix_evidence_upload_slot_unswept",
        "evidence_upload_slot",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("swept_at IS NULL"),
        sqlite_where=sa.text("swept_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_evidence_upload_slot_unswept",
        table_name="evidence_upload_slot",
        postgresql_where=sa.text("swept_at IS NULL"),
        sqlite_where=sa.text("swept_at IS NULL"),
    )
    with op.batch_alter_table("evidence_upload_slot", schema=None) as batch_op:
        batch_op.drop_column("swept_at")
