"""自负: the tenant's accountability ledger (DESIGN sections 2-3).

Lapses become entries — a self-check flagged overdue, a patrol day missed, a hazard flagged overdue, a hazard
whose rectification was rejected again — one per lapse (the ``(tenant, kind, subject)`` key makes finding it
twice a no-op). An entry is attributed to the person responsible for that area (a hazard's responsible
person, else the tenant's manager; self-checks and patrols: the manager) and starts at the ``manager`` step
of the ladder. While unresolved it climbs manager → responsible person → grid warden → regulator as its
age passes the :class:`Ladder` delays; each new step notifies the people on it (once: notifications are
deduplicated per entry and step). An entry resolves when its subject is fixed: the self-check signed, the
hazard closed, a complete patrol day after the missed one. :func:`run` does all of it; a daily job calls it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core.db import AnySelect
from portal.models.identity import User
from portal.models.selfcheck import (
    AccountabilityEntry,
    Hazard,
    HazardEvent,
    HazardStatus,
    LadderStep,
    LedgerKind,
    SelfCheck,
    SelfCheckStatus,
)
from portal.models.tenants import Tenant
from portal.selfcheck import ladder as ladder_
from portal.selfcheck.ladder import (
    DEFAULT_LADDER,
    KIND_LABELS,
    STEP_LABELS,
    STEPS,
    Ladder,
    manager_of,
    people_on_step,
)
from portal.selfcheck.patrols import services as patrols

log = structlog.get_logger("portal.accountability")

__all__ = [
    "DEFAULT_LADDER",
    "KIND_LABELS",
    "STEP_LABELS",
    "Ladder",
    "Lapse",
    "LedgerRow",
    "RunResult",
    "escalate",
    "find_lapses",
    "ledger",
    "manager_of",
    "people_on_step",
    "record_lapse",
    "resolve_fixed",
    "run",
]


@dataclass(frozen=True)
class RunResult:
    opened: int
    escalated: int
    resolved: int


@dataclass(frozen=True)
class Lapse:
    tenant_id: uuid.UUID
    kind: LedgerKind
    subject_type: str
    subject_id: str
    summary: str
    attributed_user_id: uuid.UUID | None


# -- finding lapses ---------------------------------------------------------------------------------------


def _in(column: Any, tenant_ids: Sequence[uuid.UUID] | None) -> Any:
    return column.in_(list(tenant_ids)) if tenant_ids is not None else True


async def find_lapses(
    session: AsyncSession, now: datetime, *, tenant_ids: Sequence[uuid.UUID] | None = None
) -> list[Lapse]:
    """Every current lapse (whether or not it is in the ledger already). ``tenant_ids`` narrows the search."""
    lapses: list[Lapse] = []
    managers: dict[uuid.UUID, uuid.UUID | None] = {}

    async def manager(tenant_id: uuid.UUID) -> uuid.UUID | None:
        if tenant_id not in managers:
            managers[tenant_id] = await manager_of(session, tenant_id)
        return managers[tenant_id]

    for sc in (
        await session.execute(
            select(SelfCheck)
            .where(SelfCheck.overdue_at.is_not(None), SelfCheck.status != SelfCheckStatus.SIGNED)
            .where(_in(SelfCheck.tenant_id, tenant_ids))
            .order_by(SelfCheck.tenant_id, SelfCheck.period)
        )
    ).scalars():
        lapses.append(
            Lapse(
                sc.tenant_id,
                LedgerKind.OVERDUE_SELFCHECK,
                "selfcheck",
                str(sc.id),
                sc.period,
                await manager(sc.tenant_id),
            )
        )
    rejects = (
        select(HazardEvent.hazard_id)
        .where(HazardEvent.action == "reject")
        .group_by(HazardEvent.hazard_id)
        .having(func.count() >= 2)
    )
    open_hazards = (
        select(Hazard).where(Hazard.status != HazardStatus.CLOSED).where(_in(Hazard.tenant_id, tenant_ids))
    )
    for kind, stmt in (
        (LedgerKind.OVERDUE_HAZARD, open_hazards.where(Hazard.overdue_at.is_not(None))),
        (LedgerKind.REOPENED_HAZARD, open_hazards.where(Hazard.id.in_(rejects))),
    ):
        for hazard in (await session.execute(stmt.order_by(Hazard.tenant_id, Hazard.opened_at))).scalars():
            who = hazard.responsible_user_id or await manager(hazard.tenant_id)
            lapses.append(Lapse(hazard.tenant_id, kind, "hazard", str(hazard.id), hazard.title, who))
    yesterday = patrols.local_day(now) - timedelta(days=1)
    key_units = (
        select(Tenant).where(Tenant.active.is_(True), _in(Tenant.id, tenant_ids)).order_by(Tenant.code)
    )
    for tenant in (await session.execute(key_units)).scalars():
        if not patrols.patrols_required(tenant) or patrols.local_day(tenant.created_at) >= yesterday:
            continue  # no patrol duty, or onboarded too recently: the onboarding day itself never counts
        if await patrols.missed_days(session, tenant, yesterday, yesterday):
            day = yesterday.isoformat()
            lapses.append(
                Lapse(tenant.id, LedgerKind.MISSED_PATROL, "patrol_day", day, day, await manager(tenant.id))
            )
    return lapses


async def record_lapse(session: AsyncSession, lapse: Lapse, now: datetime) -> AccountabilityEntry | None:
    """Write the entry for ``lapse`` unless it exists (``None`` then). Idempotent through the unique key."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(AccountabilityEntry)
        .values(
            tenant_id=lapse.tenant_id,
            kind=lapse.kind,
            subject_type=lapse.subject_type,
            subject_id=lapse.subject_id,
            summary=lapse.summary,
            attributed_user_id=lapse.attributed_user_id,
            step=LadderStep.MANAGER,
            opened_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "kind", "subject_id"])
        .returning(AccountabilityEntry.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is None:
        return None
    entry = await session.get(AccountabilityEntry, new_id)
    assert entry is not None
    await audit.record(
        session,
        "accountability.opened",
        tenant_id=lapse.tenant_id,
        object_type="accountability_entry",
        object_id=new_id,
        detail={
            "kind": lapse.kind.value,
            "subject": lapse.subject_id,
            "attributed": str(lapse.attributed_user_id),
        },
    )
    return entry


# -- resolving and escalating ------------------------------------------------------------------------------


async def _fixed(session: AsyncSession, entry: AccountabilityEntry, tenant: Tenant, now: datetime) -> bool:
    if entry.kind is LedgerKind.OVERDUE_SELFCHECK:
        sc = await session.get(SelfCheck, uuid.UUID(entry.subject_id))
        return sc is None or sc.status is SelfCheckStatus.SIGNED
    if entry.kind in (LedgerKind.OVERDUE_HAZARD, LedgerKind.REOPENED_HAZARD):
        hazard = await session.get(Hazard, uuid.UUID(entry.subject_id))
        return hazard is None or hazard.status is HazardStatus.CLOSED
    if entry.kind is LedgerKind.MISSED_PATROL:  # patrols resumed: a complete day after the missed one
        first = date.fromisoformat(entry.subject_id) + timedelta(days=1)
        last = patrols.local_day(now) - timedelta(days=1)
        if last < first:
            return False
        return len(await patrols.missed_days(session, tenant, first, last)) < (last - first).days + 1
    return False


async def _open_entries(
    session: AsyncSession, tenant_ids: Sequence[uuid.UUID] | None
) -> list[tuple[AccountabilityEntry, Tenant]]:
    rows = await session.execute(
        select(AccountabilityEntry, Tenant)
        .join(Tenant, Tenant.id == AccountabilityEntry.tenant_id)
        .where(AccountabilityEntry.resolved_at.is_(None), _in(AccountabilityEntry.tenant_id, tenant_ids))
        .order_by(AccountabilityEntry.opened_at)
    )
    return [(e, t) for e, t in rows.all()]


async def resolve_fixed(
    session: AsyncSession, now: datetime, tenant_ids: Sequence[uuid.UUID] | None = None
) -> int:
    """Resolve the open entries whose subject is fixed; returns how many. Resolved entries stop climbing."""
    resolved = 0
    for entry, tenant in await _open_entries(session, tenant_ids):
        if not await _fixed(session, entry, tenant, now):
            continue
        entry.resolved_at = now
        resolved += 1
        await audit.record(
            session,
            "accountability.resolved",
            tenant_id=tenant.id,
            object_type="accountability_entry",
            object_id=entry.id,
            detail={"kind": entry.kind.value, "step": entry.step.value},
        )
    await session.flush()
    return resolved


async def escalate(
    session: AsyncSession,
    now: datetime,
    ladder: Ladder = DEFAULT_LADDER,
    *,
    tenant_ids: Sequence[uuid.UUID] | None = None,
) -> int:
    """Move every open entry up to the step its age calls for, notifying the people on the new step."""
    escalated = 0
    for entry, tenant in await _open_entries(session, tenant_ids):
        target = ladder.step_for(now - entry.opened_at)
        if STEPS.index(target) <= STEPS.index(entry.step):
            continue
        before, entry.step, entry.escalated_at = entry.step, target, now
        escalated += 1
        await session.flush()
        await audit.record(
            session,
            "accountability.escalated",
            tenant_id=tenant.id,
            object_type="accountability_entry",
            object_id=entry.id,
            detail={"kind": entry.kind.value, "from": before.value, "to": target.value},
        )
        await ladder_.notify_step(session, entry, tenant, escalated=True)
    return escalated


async def run(
    session: AsyncSession,
    now: datetime | None = None,
    ladder: Ladder = DEFAULT_LADDER,
    *,
    tenant_ids: Sequence[uuid.UUID] | None = None,
) -> RunResult:
    """Resolve what was fixed, record new lapses (notifying the manager step), escalate what is due.
    Safe to run any number of times: nothing is recorded or notified twice. Runs under the system scope."""
    now = now or datetime.now(UTC)
    resolved = await resolve_fixed(session, now, tenant_ids=tenant_ids)
    opened = 0
    tenants: dict[uuid.UUID, Tenant] = {}
    for lapse in await find_lapses(session, now, tenant_ids=tenant_ids):
        new = await record_lapse(session, lapse, now)
        if new is None:
            continue
        opened += 1
        owner = tenants.get(lapse.tenant_id) or await session.get(Tenant, lapse.tenant_id)
        assert owner is not None
        tenants[owner.id] = owner
        await ladder_.notify_step(session, new, owner, escalated=False)
    escalated = await escalate(session, now, ladder, tenant_ids=tenant_ids)
    await session.flush()
    busy = opened or escalated or resolved
    (log.info if busy else log.debug)(
        "accountability_run", opened=opened, escalated=escalated, resolved=resolved
    )
    return RunResult(opened, escalated, resolved)


# -- the ledger page -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    entry: AccountabilityEntry
    person: str  # display name of the attributed person ("" when nobody)

    def age_days(self, now: datetime) -> int:
        end = self.entry.resolved_at or now
        return max(0, (end - self.entry.opened_at).days)


@functools.cache
def _ledger(limit: int) -> AnySelect:
    # Built once per page size (the tenant dashboard shows a few rows on every visit).
    step_rank = case(*[(AccountabilityEntry.step == s, n) for n, s in enumerate(STEPS)], else_=0)
    return (
        select(AccountabilityEntry, User.display_name)
        .outerjoin(User, User.id == AccountabilityEntry.attributed_user_id)
        .where(AccountabilityEntry.tenant_id == bindparam("tenant_id"))
        .order_by(
            case((AccountabilityEntry.resolved_at.is_(None), 0), else_=1),
            step_rank.desc(),
            case((AccountabilityEntry.resolved_at.is_(None), AccountabilityEntry.opened_at), else_=None),
            AccountabilityEntry.resolved_at.desc(),
        )
        .limit(limit)
    )


async def ledger(session: AsyncSession, tenant_id: uuid.UUID, *, limit: int = 200) -> list[LedgerRow]:
    """The tenant's entries: open ones first (highest step, then oldest), then resolved ones, newest first."""
    rows = await session.execute(_ledger(limit), {"tenant_id": tenant_id})
    return [LedgerRow(entry, name or "") for entry, name in rows.all()]
