"""The audit log table. Each row carries the hash of the previous row of its chain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base
from portal.core.tenancy import TenantScoped

PLATFORM_CHAIN = "platform"


class AuditEntry(Base, TenantScoped):
    """Who did what, when, from where. ``tenant_id`` is NULL on the platform chain (admin actions), which
    only the system scope reads. No foreign key on purpose: the record outlives what it describes."""

    __tablename__ = "audit_entry"
    # Rows of the platform chain have no tenant; they may be appended from any scope (see tenancy.py).
    __platform_rows__: ClassVar[bool] = True

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_entry_tenant_at", "tenant_id", "at"),
    )


class AuditChainHead(Base):
    """The last (seq, hash) of each chain. Appends lock this row, so concurrent writers serialise per chain;
    it carries no content (RLS-free), and ``portal audit verify`` checks it against the entries."""

    __tablename__ = "audit_chain_head"
    chain: Mapped[str] = mapped_column(String(40), unique=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
