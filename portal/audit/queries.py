"""Reading the audit log: the per-tenant page (filters, count, one page of entries) and what the verify
command needs to name its chains. Appending and verifying stay in :mod:`portal.audit.services`.

Queries run on the caller's scoped session, so the tenancy scope (ORM criteria, and row-level security
on PostgreSQL) applies on top of the explicit ``tenant_id`` filter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.tenancy import require_scope
from portal.models.audit import PLATFORM_CHAIN, AuditChainHead, AuditEntry

MAX_TEXT = 100


def clean_text(value: str | None, limit: int = MAX_TEXT) -> str:
    """Printable characters only (a NUL byte aborts a PostgreSQL statement), trimmed and bounded."""
    return "".join(ch for ch in (value or "") if ch.isprintable()).strip()[:limit]


@dataclass(frozen=True)
class EntryFilter:
    """What the audit page narrows the chain to. Dates are calendar days in the display time zone,
    both ends included."""

    action: str = ""
    actor: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @property
    def active(self) -> bool:
        return bool(self.action or self.actor or self.date_from or self.date_to)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Midnight at the start of ``day`` in ``tz``, as an aware UTC moment."""
    return datetime.combine(day, time.min, tz).astimezone(UTC)


def _where(tenant_id: uuid.UUID, flt: EntryFilter, tz: ZoneInfo) -> list[Any]:
    clauses: list[Any] = [AuditEntry.chain == str(tenant_id), AuditEntry.tenant_id == tenant_id]
    if flt.action:
        clauses.append(AuditEntry.action == flt.action)
    if flt.actor:
        clauses.append(AuditEntry.actor.icontains(flt.actor, autoescape=True))
    if flt.date_from is not None:
        clauses.append(AuditEntry.at >= day_start(flt.date_from, tz))
    if flt.date_to is not None:
        clauses.append(AuditEntry.at < day_start(flt.date_to + timedelta(days=1), tz))
    return clauses


async def list_entries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    flt: EntryFilter,
    *,
    tz: ZoneInfo,
    offset: int = 0,
    limit: int = 25,
) -> Sequence[AuditEntry]:
    """One page of the tenant's chain, newest first (chain order, so equal timestamps stay ordered)."""
    require_scope(session)
    stmt = (
        select(AuditEntry)
        .where(*_where(tenant_id, flt, tz))
        .order_by(AuditEntry.seq.desc())
        .offset(offset)
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()


async def count_entries(
    session: AsyncSession, tenant_id: uuid.UUID, flt: EntryFilter, *, tz: ZoneInfo
) -> int:
    require_scope(session)
    stmt = select(func.count()).select_from(AuditEntry).where(*_where(tenant_id, flt, tz))
    return int((await session.execute(stmt)).scalar_one())


async def actions_in_chain(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    """The distinct actions recorded for the tenant (the choices of the action filter)."""
    require_scope(session)
    stmt = (
        select(AuditEntry.action)
        .where(AuditEntry.chain == str(tenant_id), AuditEntry.tenant_id == tenant_id)
        .distinct()
        .order_by(AuditEntry.action)
    )
    return list((await session.execute(stmt)).scalars().all())


# -- for `portal audit verify` (system scope) ----------------------------------------------------------


@dataclass(frozen=True)
class ChainSummary:
    chain: str
    entries: int
    tenant_code: str = ""


async def chain_summaries(session: AsyncSession, chains: Sequence[str] | None = None) -> list[ChainSummary]:
    """Every chain (or the named ones) with its entry count and, for a tenant chain, the tenant's code.

    The platform chain comes first, then the tenant chains by code; a chain that has entries but no head
    (or a head but no entries) is listed too, so the verify command checks it.
    """
    from portal.models.tenants import Tenant

    require_scope(session)
    stmt = select(AuditEntry.chain, func.count()).group_by(AuditEntry.chain)
    if chains is not None:
        stmt = stmt.where(AuditEntry.chain.in_(sorted(set(chains))))
    counts = {chain: int(n) for chain, n in (await session.execute(stmt)).all()}
    if chains is None:
        names = set(counts) | set((await session.execute(select(AuditChainHead.chain))).scalars())
    else:
        names = set(chains)
    tenant_ids = [uuid.UUID(name) for name in names if _is_uuid(name)]
    codes: dict[str, str] = {}
    if tenant_ids:
        rows = await session.execute(select(Tenant.id, Tenant.code).where(Tenant.id.in_(tenant_ids)))
        for tid, code in rows.all():
            codes[str(tid)] = code
    summaries = [ChainSummary(name, counts.get(name, 0), codes.get(name, "")) for name in names]
    return sorted(summaries, key=lambda s: (s.chain != PLATFORM_CHAIN, s.tenant_code or "~", s.chain))


async def resolve_tenant(session: AsyncSession, code_or_id: str) -> tuple[uuid.UUID, str] | None:
    """A tenant's (id, code) from its code or its id (system scope); ``None`` if there is no such tenant.

    An id without a tenant row still resolves when its chain exists: the log outlives what it describes.
    """
    from portal.models.tenants import Tenant

    require_scope(session)
    text = code_or_id.strip()
    if _is_uuid(text):
        tid = uuid.UUID(text)
        code = (await session.execute(select(Tenant.code).where(Tenant.id == tid))).scalar_one_or_none()
        if code is not None:
            return tid, code
        known = (
            await session.execute(select(AuditChainHead.id).where(AuditChainHead.chain == str(tid)))
        ).first()
        return (tid, "") if known else None
    row = (await session.execute(select(Tenant.id, Tenant.code).where(Tenant.code == text))).first()
    return (row[0], row[1]) if row else None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


__all__ = [
    "ChainSummary",
    "EntryFilter",
    "actions_in_chain",
    "chain_summaries",
    "clean_text",
    "count_entries",
    "day_start",
    "list_entries",
    "resolve_tenant",
]
