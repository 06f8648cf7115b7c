"""Appending to and verifying the audit log.

Every state change and every cross-tenant read by a regulator, warden or insurer appends an entry in the
same transaction as the change. Entries of one chain (one per tenant, plus ``platform``) link by hash:
``hash = sha256(canonical JSON of the entry including prev_hash)``. The actor (who, from where, which
request) comes from a context variable that the web layer or the job sets, so services stay HTTP-free.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.actor import SYSTEM_ACTOR as SYSTEM_ACTOR
from portal.core.actor import Actor as Actor
from portal.core.actor import acting_as as acting_as
from portal.core.actor import current_actor as current_actor
from portal.core.actor import set_actor as set_actor
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.audit import PLATFORM_CHAIN, AuditChainHead, AuditEntry

GENESIS = "0" * 64


def _canonical(entry: AuditEntry) -> bytes:
    body = {
        "chain": entry.chain,
        "seq": entry.seq,
        "tenant_id": str(entry.tenant_id) if entry.tenant_id else None,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_user_id": str(entry.actor_user_id) if entry.actor_user_id else None,
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "detail": entry.detail,
        "ip": entry.ip,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


async def _lock_head(session: AsyncSession, chain: str) -> tuple[int, str]:
    """The chain's last (seq, hash), with the head row locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(AuditChainHead)
        .values(chain=chain, seq=-1, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["chain"])
    )
    stmt = select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.chain == chain)
    if dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).one()
    return int(row[0]), str(row[1])


async def record(
    session: AsyncSession,
    action: str,
    *,
    tenant_id: uuid.UUID | None,
    object_type: str = "",
    object_id: str | uuid.UUID = "",
    detail: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Append one entry to the tenant's chain (or the platform chain when ``tenant_id`` is None)."""
    who = actor or current_actor()
    chain = str(tenant_id) if tenant_id else PLATFORM_CHAIN
    last_seq, last_hash = await _lock_head(session, chain)
    entry = AuditEntry(
        tenant_id=tenant_id,
        chain=chain,
        seq=last_seq + 1,
        at=datetime.now(UTC),
        actor_user_id=who.user_id,
        actor=who.label[:160],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail or {},
        ip=who.ip,
        request_id=who.request_id,
        prev_hash=last_hash,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    await session.flush()
    await session.execute(
        update(AuditChainHead).where(AuditChainHead.chain == chain).values(seq=entry.seq, hash=entry.hash)
    )
    return entry


async def record_reads(
    session: AsyncSession,
    tenant_ids: Sequence[uuid.UUID],
    action: str,
    *,
    object_type: str = "tenant",
    detail: dict[str, Any] | None = None,
) -> None:
    """A cross-tenant read leaves one entry in each tenant's chain that was read."""
    for tid in dict.fromkeys(tenant_ids):
        await record(session, action, tenant_id=tid, object_type=object_type, object_id=tid, detail=detail)


@dataclass(frozen=True)
class Break:
    chain: str
    seq: int
    reason: str


async def verify(db: Database, *, tenant_id: uuid.UUID | None = None, platform: bool = False) -> list[Break]:
    """Recompute the chains (all of them, or one) and name the first broken link of each broken chain."""
    breaks: list[Break] = []
    async with db.session(Scope.system("audit verify")) as session:
        if tenant_id is not None:
            chains = [str(tenant_id)]
        elif platform:
            chains = [PLATFORM_CHAIN]
        else:
            chains = list(
                (await session.execute(select(AuditChainHead.chain).order_by(AuditChainHead.chain))).scalars()
            )
            entry_chains = set((await session.execute(select(AuditEntry.chain).distinct())).scalars())
            chains += sorted(entry_chains - set(chains))
        for chain in chains:
            problem = await _verify_chain(session, chain)
            if problem is not None:
                breaks.append(problem)
    return breaks


async def _verify_chain(session: AsyncSession, chain: str) -> Break | None:
    prev = GENESIS
    expected_seq = 0
    result = await session.stream_scalars(
        select(AuditEntry).where(AuditEntry.chain == chain).order_by(AuditEntry.seq)
    )
    async for entry in result:
        if entry.seq != expected_seq:
            return Break(chain, expected_seq, f"entry {expected_seq} is missing (found {entry.seq})")
        if entry.prev_hash != prev:
            return Break(chain, entry.seq, "prev_hash does not match the previous entry")
        if entry_hash(entry) != entry.hash:
            return Break(chain, entry.seq, "content does not match its hash (the entry was changed)")
        prev = entry.hash
        expected_seq += 1
    head = (
        await session.execute(select(AuditChainHead).where(AuditChainHead.chain == chain))
    ).scalar_one_or_none()
    if head is None and expected_seq:
        return Break(chain, expected_seq - 1, "the chain has no head record")
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return Break(
            chain, max(expected_seq - 1, 0), "entries were removed after this one (head does not match)"
        )
    return None


async def count(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    return int(
        (await session.execute(select(func.count()).where(AuditEntry.tenant_id == tenant_id))).scalar_one()
    )


__all__ = [
    "GENESIS",
    "SYSTEM_ACTOR",
    "Actor",
    "Break",
    "acting_as",
    "count",
    "current_actor",
    "record",
    "record_reads",
    "set_actor",
    "verify",
]
