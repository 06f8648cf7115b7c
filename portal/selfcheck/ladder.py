"""The ladder of the accountability ledger: its steps and delays, who stands on each step, and the
notifications an entry sends when it lands on a step (in each person's language, once per entry and step)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import i18n
from portal.core.i18n import N_, _
from portal.models.grid import WardenAssignment
from portal.models.selfcheck import AccountabilityEntry, LadderStep, LedgerKind
from portal.models.tenants import Jurisdiction, MemberRole, Membership, RegulatorAssignment, Tenant
from portal.notify.services import notify_in_own_language

log = structlog.get_logger("portal.accountability")

STEPS = list(LadderStep)  # the order of the ladder
KIND_LABELS = {
    LedgerKind.OVERDUE_SELFCHECK: N_("Monthly self-check not signed by its deadline"),
    LedgerKind.MISSED_PATROL: N_("Daily patrol not complete"),
    LedgerKind.OVERDUE_HAZARD: N_("Hazard not rectified by its deadline"),
    LedgerKind.REOPENED_HAZARD: N_("Rectification rejected again"),
    LedgerKind.IGNORED_ORDER: N_("Regulator's order ignored"),
}
STEP_LABELS = {
    LadderStep.MANAGER: N_("manager"),
    LadderStep.RESPONSIBLE: N_("responsible person"),
    LadderStep.WARDEN: N_("grid warden"),
    LadderStep.REGULATOR: N_("regulator"),
}


@dataclass(frozen=True)
class Ladder:
    """Days after an entry was opened at which it reaches each step (product defaults, configurable)."""

    responsible_after_days: int = 3
    warden_after_days: int = 7
    regulator_after_days: int = 14

    def step_for(self, age: timedelta) -> LadderStep:
        if age >= timedelta(days=self.regulator_after_days):
            return LadderStep.REGULATOR
        if age >= timedelta(days=self.warden_after_days):
            return LadderStep.WARDEN
        if age >= timedelta(days=self.responsible_after_days):
            return LadderStep.RESPONSIBLE
        return LadderStep.MANAGER


DEFAULT_LADDER = Ladder()


# -- who is on the hook -------------------------------------------------------------------------------


async def _members(session: AsyncSession, tenant_id: uuid.UUID, role: MemberRole) -> list[uuid.UUID]:
    rows = await session.execute(
        select(Membership.user_id)
        .where(Membership.tenant_id == tenant_id, Membership.role == role)
        .order_by(Membership.created_at, Membership.user_id)
    )
    return list(rows.scalars())


async def manager_of(session: AsyncSession, tenant_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant's manager (the first appointed); a small place without one: its responsible person."""
    for role in (MemberRole.MANAGER, MemberRole.RESPONSIBLE):
        people = await _members(session, tenant_id, role)
        if people:
            return people[0]
    return None


def _prefixes(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["".join(f"{p}/" for p in parts[: n + 1]) for n in range(len(parts))]


async def people_on_step(
    session: AsyncSession, tenant: Tenant, step: LadderStep, attributed: uuid.UUID | None
) -> list[uuid.UUID]:
    """Who a step notifies: the attributed person and the managers; the responsible persons; the wardens of
    the tenant's grid; the regulators of every jurisdiction above the tenant (path prefix)."""
    if step is LadderStep.MANAGER:
        managers = await _members(session, tenant.id, MemberRole.MANAGER) or await _members(
            session, tenant.id, MemberRole.RESPONSIBLE
        )
        people = ([attributed] if attributed else []) + managers
    elif step is LadderStep.RESPONSIBLE:
        people = await _members(session, tenant.id, MemberRole.RESPONSIBLE)
    elif step is LadderStep.WARDEN:
        if tenant.grid_id is None:
            return []
        people = list(
            (
                await session.execute(
                    select(WardenAssignment.user_id)
                    .where(WardenAssignment.grid_id == tenant.grid_id)
                    .order_by(WardenAssignment.created_at)
                )
            ).scalars()
        )
    else:
        people = list(
            (
                await session.execute(
                    select(RegulatorAssignment.user_id)
                    .join(Jurisdiction, Jurisdiction.id == RegulatorAssignment.jurisdiction_id)
                    .where(Jurisdiction.path.in_(_prefixes(tenant.jurisdiction_path)))
                    .order_by(Jurisdiction.path, RegulatorAssignment.created_at)
                )
            ).scalars()
        )
    return list(dict.fromkeys(people))


# -- notifications --------------------------------------------------------------------------------------


def _message(entry: AccountabilityEntry, tenant: Tenant, escalated: bool) -> tuple[str, str]:
    what = _(KIND_LABELS[entry.kind])
    name = tenant.name_en if i18n.current_locale() == "en" and tenant.name_en else tenant.name_zh
    title = _("%(what)s: %(tenant)s", what=what, tenant=name)
    lines = [f"{what}: {entry.summary}"]
    step = _(STEP_LABELS[entry.step])
    if escalated:
        lines.append(_("Not fixed in time, so it has been escalated to the %(step)s.", step=step))
    else:
        lines.append(_("Recorded in the accountability ledger, on the %(step)s's desk.", step=step))
    lines.append(_("It stays open, and keeps climbing the ladder, until it is fixed."))
    return title, "\n".join(lines)


async def notify_step(
    session: AsyncSession, entry: AccountabilityEntry, tenant: Tenant, escalated: bool
) -> int:
    people = await people_on_step(session, tenant, entry.step, entry.attributed_user_id)
    if not people:
        log.warning("ladder_step_without_people", tenant_id=str(tenant.id), step=entry.step.value)
        return 0
    created = await notify_in_own_language(
        session,
        people,
        "accountability.escalated" if escalated else "accountability.opened",
        lambda: _message(entry, tenant, escalated),
        f"/t/{tenant.id}/accountability",
        f"ledger:{entry.id}:{entry.step.value}",
        tenant_id=tenant.id,
    )
    return len(created)
