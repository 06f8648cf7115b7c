"""Periodic jobs of the cycle: open each month's self-checks, flag what passed its deadline."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models.selfcheck import Hazard, HazardStatus, SelfCheck, SelfCheckStatus
from portal.models.tenants import Tenant
from portal.selfcheck.deadlines import period_of, previous_period
from portal.selfcheck.hazards import services as hazards
from portal.selfcheck.monthly import services as sc_services

log = structlog.get_logger("portal.selfcheck")


async def open_periods(session: AsyncSession, period: str) -> int:
    """Make sure every active tenant has this period's self-check, and last period's too (a missed run
    catches up), never one of a month before the tenant joined: a unit registered today is not overdue
    for last month. Idempotent: the (tenant, period) key makes a second run create nothing."""
    created = 0
    tenants = (
        await session.execute(select(Tenant).where(Tenant.active.is_(True)).order_by(Tenant.code))
    ).scalars()
    for tenant in tenants.all():
        joined = period_of(tenant.created_at)
        for p in (previous_period(period), period):
            if p < joined:  # "YYYY-MM" strings order as the months do
                continue
            existing = (
                await session.execute(
                    select(SelfCheck.id).where(SelfCheck.tenant_id == tenant.id, SelfCheck.period == p)
                )
            ).first()
            if existing is None and await sc_services.ensure_selfcheck(session, tenant, p) is not None:
                created += 1
    # A line when something happened; the routine "nothing to do" only at debug.
    (log.info if created else log.debug)("selfchecks_opened", period=period, created=created)
    return created


async def open_periods_job(session: AsyncSession, period_key: str) -> None:
    await open_periods(session, period_key)


async def flag_overdue(session: AsyncSession, now: datetime) -> tuple[int, int]:
    late_checks = 0
    for sc in (
        await session.execute(
            select(SelfCheck).where(
                SelfCheck.status != SelfCheckStatus.SIGNED,
                SelfCheck.overdue_at.is_(None),
                SelfCheck.deadline_at < now,
            )
        )
    ).scalars():
        late_checks += sc_services.mark_overdue(sc, now)
    late_hazards = 0
    for hazard in (
        await session.execute(
            select(Hazard).where(
                Hazard.status != HazardStatus.CLOSED, Hazard.overdue_at.is_(None), Hazard.deadline_at < now
            )
        )
    ).scalars():
        late_hazards += hazards.mark_overdue(hazard, now)
    return late_checks, late_hazards


async def flag_overdue_job(session: AsyncSession, period_key: str) -> None:
    checks, found = await flag_overdue(session, datetime.now(UTC))
    (log.info if checks or found else log.debug)("overdue_flagged", selfchecks=checks, hazards=found)
