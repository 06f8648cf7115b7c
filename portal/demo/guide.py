"""What ``make run`` prints: where the portal is and whom to click on the demo sign-in page, per role."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.grid import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.models.identity import User
from portal.models.insurer import Insurer, InsurerUser
from portal.models.selfcheck import SelfCheck, SelfCheckStatus
from portal.models.tenants import Jurisdiction, MemberRole, Membership, RegulatorAssignment, Tenant
from portal.selfcheck.deadlines import period_of, previous_period

ROLES = [
    ("responsible person / 消防安全责任人", MemberRole.RESPONSIBLE),
    ("unit manager / 消防安全管理人", MemberRole.MANAGER),
    ("unit staff / 员工", MemberRole.STAFF),
]


async def sign_in_guide(settings: Settings) -> list[str]:
    db = Database(settings)
    lines = []
    try:
        async with db.session(Scope.system("demo guide")) as s:
            for label, role in ROLES:
                row = (
                    await s.execute(
                        select(User.display_name, User.login, Tenant.name_zh)
                        .join(Membership, Membership.user_id == User.id)
                        .join(Tenant, Tenant.id == Membership.tenant_id)
                        .where(Membership.role == role)
                        .order_by(Tenant.code, User.login)
                        .limit(1)
                    )
                ).first()
                if row:
                    lines.append(f"  - {label}: {row[0]} ({row[1]}), {row[2]}")
            lines += await _cross_tenant_lines(s)
            lines += await _history_lines(s)
            admin = (
                await s.execute(
                    select(User.display_name, User.login).where(User.is_platform_admin.is_(True)).limit(1)
                )
            ).first()
            if admin:
                lines.append(f"  - platform admin / 平台管理员: {admin[0]} ({admin[1]})")
    finally:
        await db.dispose()
    return lines


async def _cross_tenant_lines(s: AsyncSession) -> list[str]:
    """The people who look after several units, each with what they cover (a warden's grid, a
    committee's name, a regulator's office and area, an insurer's company)."""
    covers = (
        (
            "grid warden / 网格员",
            select(User.display_name, User.login, Grid.name_zh, Committee.name_zh)
            .join(WardenAssignment, WardenAssignment.user_id == User.id)
            .join(Grid, Grid.id == WardenAssignment.grid_id)
            .join(Committee, Committee.id == Grid.committee_id),
        ),
        (
            "neighbourhood committee / 居委会",
            select(User.display_name, User.login, Committee.name_zh)
            .join(CommitteeStaff, CommitteeStaff.user_id == User.id)
            .join(Committee, Committee.id == CommitteeStaff.committee_id),
        ),
        (
            "regulator / 监管人员",
            select(User.display_name, User.login, RegulatorAssignment.org_name_zh, Jurisdiction.name_zh)
            .join(RegulatorAssignment, RegulatorAssignment.user_id == User.id)
            .join(Jurisdiction, Jurisdiction.id == RegulatorAssignment.jurisdiction_id),
        ),
        (
            "insurer / 保险机构",
            select(User.display_name, User.login, Insurer.name_zh)
            .join(InsurerUser, InsurerUser.user_id == User.id)
            .join(Insurer, Insurer.id == InsurerUser.insurer_id),
        ),
    )
    lines = []
    for label, stmt in covers:
        row = (await s.execute(stmt.order_by(User.login).limit(1))).first()
        if row:
            name, login, *what = row
            lines.append(f"  - {label}: {name} ({login}), {' · '.join(what)}")
    return lines


async def _history_lines(s: AsyncSession, shown: int = 3) -> list[str]:
    """Whom to click to see months of history (portal/demo/history.py gives it to some units only): the
    manager (or, in a small place, the owner) of the first few units with a report three months old."""
    period = period_of(datetime.now(UTC))
    for _n in range(3):
        period = previous_period(period)
    with_history = (
        select(SelfCheck.tenant_id)
        .where(
            SelfCheck.period <= period,
            SelfCheck.status.in_([SelfCheckStatus.SUBMITTED, SelfCheckStatus.SIGNED]),
        )
        .distinct()
    )
    tenants = (
        (await s.execute(select(Tenant).where(Tenant.id.in_(with_history)).order_by(Tenant.code)))
        .scalars()
        .all()
    )
    if not tenants:
        return []
    lines = [f"  - units with months of history / 有历史记录的单位 ({len(tenants)}), e.g.:"]
    for tenant in tenants[:shown]:
        person = (
            await s.execute(
                select(User.display_name, User.login)
                .join(Membership, Membership.user_id == User.id)
                .where(
                    Membership.tenant_id == tenant.id,
                    Membership.role.in_([MemberRole.MANAGER, MemberRole.RESPONSIBLE]),
                )
                .order_by(Membership.role != MemberRole.MANAGER, User.login)
                .limit(1)
            )
        ).first()
        if person:
            lines.append(f"      {person[0]} ({person[1]}), {tenant.name_zh}")
    return lines
