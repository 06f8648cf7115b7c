"""Appending to and verifying the audit log.

Every state change and every cross-tenant read by a regulator, warden or insurer appends an entry in the
same transaction as the change. Entries of one chain (one per tenant, plus ``platform``) link by hash:
``hash = sha256(canonical JSON of the entry including prev_hash)``. The actor (who, from where, which
request) comes from a context variable that the web layer or the job sets, so services stay HTTP-free.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.actor import SYSTEM_ACTOR as SYSTEM_ACTOR
from portal.core.actor import Actor as Actor
from portal.core.actor import acting_as as acting_as
from portal.core.actor import current_actor as current_actor
from portal.core.actor import set_actor as set_actor
from portal.core.db import Database
from portal.core.tenancy import Scope, ScopeKind, scope_of, set_scope
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


def _link_problem(entry: AuditEntry, expected_seq: int, prev: str | None) -> str:
    """Why ``entry`` is not the intact successor of ``prev`` at ``expected_seq`` ("" if it is); ``prev``
    None: the walk starts here, so the link backwards is not checked."""
    if entry.seq != expected_seq:
        return f"entry {expected_seq} is missing (found {entry.seq})"
    if prev is not None and entry.prev_hash != prev:
        return "prev_hash does not match the previous entry"
    if entry_hash(entry) != entry.hash:
        return "content does not match its hash (the entry was changed)"
    return ""


async def _walk(
    session: AsyncSession, chain: str, entries: Select[AuditEntry], seq: int, prev: str | None
) -> tuple[Break | None, int, str | None]:
    """Check ``entries`` in order, the first expected at ``seq`` after a link to ``prev`` (None: not
    known, the walk starts inside the chain). The first break, else the next seq and the last hash."""
    result = await session.stream_scalars(entries.order_by(AuditEntry.seq))
    async for entry in result:
        problem = _link_problem(entry, seq, prev)
        if problem:
            return Break(chain, seq, problem), seq, prev
        prev = entry.hash
        seq += 1
    return None, seq, prev


async def _verify_chain(session: AsyncSession, chain: str) -> Break | None:
    broken, expected_seq, prev = await _walk(
        session, chain, select(AuditEntry).where(AuditEntry.chain == chain), 0, GENESIS
    )
    if broken:
        return broken
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


async def check_chain_from(session: AsyncSession, chain: str, seq: int) -> Break | None:
    """Whether ``chain`` is intact from entry ``seq`` to its head: every entry matches its hash and links to
    the one before it, and the head names the last. What a verdict relying on entry ``seq`` (and later ones)
    needs, without reading the chain's whole past; ``portal audit verify`` checks whole chains.

    The head is read first: entries appended meanwhile lie beyond it and are left out, never mistaken for
    a break. Runs on the caller's session and scope."""
    head = (
        await session.execute(
            select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.chain == chain)
        )
    ).first()
    if head is None:
        return Break(chain, seq, "the chain has no head record")
    entries = select(AuditEntry).where(
        AuditEntry.chain == chain, AuditEntry.seq >= seq, AuditEntry.seq <= head.seq
    )
    broken, expected_seq, prev = await _walk(session, chain, entries, seq, GENESIS if seq == 0 else None)
    if broken:
        return broken
    if expected_seq - 1 != head.seq or prev != head.hash:
        last = max(expected_seq - 1, seq)
        return Break(chain, last, "entries were removed after this one (head does not match)")
    return None


async def entries_about(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    object_type: str,
    object_id: str | uuid.UUID,
    actions: Sequence[str],
) -> list[AuditEntry]:
    """The tenant chain's entries about one object with one of ``actions``, in chain order."""
    stmt = (
        select(AuditEntry)
        .where(
            AuditEntry.tenant_id == tenant_id,
            AuditEntry.chain == str(tenant_id),
            AuditEntry.object_type == object_type,
            AuditEntry.object_id == str(object_id),
            AuditEntry.action.in_(list(actions)),
        )
        .order_by(AuditEntry.seq)
    )
    return list((await session.execute(stmt)).scalars())


@contextlib.asynccontextmanager
async def _reading_platform_chain(session: AsyncSession, why: str) -> AsyncIterator[None]:
    """The platform chain's rows belong to no tenant, and only the system scope reads them (row-level
    security on PostgreSQL): this session reads them in the system scope, logged, then gets its own back."""
    previous = scope_of(session)
    if previous is not None and previous.kind is ScopeKind.SYSTEM:
        yield
        return
    await set_scope(session, Scope.system(f"the platform audit chain: {why}"))
    try:
        yield
    finally:
        await set_scope(session, previous)


async def first_platform_entry(
    session: AsyncSession, action: str, object_type: str, object_id: str | uuid.UUID
) -> AuditEntry | None:
    """The platform chain's first entry about one object with ``action`` (later ones cannot rewrite it)."""
    async with _reading_platform_chain(session, action):
        stmt = (
            select(AuditEntry)
            .where(
                AuditEntry.chain == PLATFORM_CHAIN,
                AuditEntry.action == action,
                AuditEntry.object_type == object_type,
                AuditEntry.object_id == str(object_id),
            )
            .order_by(AuditEntry.seq)
            .limit(1)
        )
        return (await session.execute(stmt)).scalar_one_or_none()


async def platform_entry_at(session: AsyncSession, seq: int) -> AuditEntry | None:
    async with _reading_platform_chain(session, f"entry {seq}"):
        stmt = select(AuditEntry).where(AuditEntry.chain == PLATFORM_CHAIN, AuditEntry.seq == seq)
        return (await session.execute(stmt)).scalar_one_or_none()


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
    "check_chain_from",
    "count",
    "current_actor",
    "entries_about",
    "entry_hash",
    "first_platform_entry",
    "platform_entry_at",
    "record",
    "record_reads",
    "set_actor",
    "verify",
]
