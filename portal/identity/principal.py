"""Who is asking, in which role, and the tenancy scope that follows (DESIGN section 6).

A person may hold several roles (a membership in two tenants, a warden's grids, a regulator's office...);
each is a :class:`Context`. The active context is kept in the server-side session and re-checked on every
request, so a revoked membership stops working at once. The identity issue adds passkeys on top; until
then the demo sign-in is the way in.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.tenancy import Scope
from portal.models.tenants import MemberRole


class ContextKind(enum.StrEnum):
    MEMBER = "member"  # key = tenant id
    WARDEN = "warden"  # key = "" (all the user's grids)
    COMMITTEE = "committee"  # key = committee id; sees the tenants of the committee's grids
    REGULATOR = "regulator"  # key = jurisdiction id
    INSURER = "insurer"  # key = insurer id
    ADMIN = "admin"  # platform admin: no tenant data


@dataclass(frozen=True)
class Context:
    kind: ContextKind
    key: str
    label: str
    role: str = ""

    @property
    def token(self) -> str:
        return f"{self.kind.value}:{self.key}"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    display_name: str
    locale: str | None
    context: Context | None
    scope: Scope | None
    # In a member context: every MemberRole value the person holds in that tenant (access checks use it).
    roles: frozenset[str] = frozenset()
    # Set when an insurer's system calls the API with a key instead of a person signing in.
    api_key_id: uuid.UUID | None = None

    @property
    def kind(self) -> ContextKind | None:
        """The active role's kind (``None``: signed in without one)."""
        return self.context.kind if self.context is not None else None

    @property
    def member_roles(self) -> frozenset[MemberRole]:
        """In a member context, the roles held in that tenant; else none. What the policies read."""
        if self.kind is not ContextKind.MEMBER:
            return frozenset()
        return frozenset(MemberRole(r) for r in self.roles)


async def contexts_for(session: AsyncSession, user_id: uuid.UUID) -> list[Context]:
    """Every role the user holds. Reads memberships and consents across tenants: run under system scope."""
    from portal.models.grid import Committee, CommitteeStaff, WardenAssignment
    from portal.models.identity import User
    from portal.models.insurer import Insurer, InsurerUser
    from portal.models.tenants import Jurisdiction, Membership, RegulatorAssignment, Tenant

    out: list[Context] = []
    rows = await session.execute(
        select(Tenant.id, Tenant.name_zh, Membership.role)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user_id)
        .order_by(Tenant.code, Membership.role)
    )
    seen: set[uuid.UUID] = set()
    for tid, name, role in rows.all():
        if tid not in seen:  # one context per tenant; the strongest role comes first (enum order)
            seen.add(tid)
            out.append(Context(ContextKind.MEMBER, str(tid), name, role.value))
    for cid, cname in (
        await session.execute(
            select(Committee.id, Committee.name_zh)
            .join(CommitteeStaff, CommitteeStaff.committee_id == Committee.id)
            .where(CommitteeStaff.user_id == user_id)
        )
    ).all():
        out.append(Context(ContextKind.COMMITTEE, str(cid), cname, "committee"))
    if (
        await session.execute(select(WardenAssignment.id).where(WardenAssignment.user_id == user_id).limit(1))
    ).first():
        out.append(Context(ContextKind.WARDEN, "", "", "warden"))
    for jid, org in (
        await session.execute(
            select(Jurisdiction.id, RegulatorAssignment.org_name_zh)
            .join(RegulatorAssignment, RegulatorAssignment.jurisdiction_id == Jurisdiction.id)
            .where(RegulatorAssignment.user_id == user_id)
        )
    ).all():
        out.append(Context(ContextKind.REGULATOR, str(jid), org, "regulator"))
    for iid, name in (
        await session.execute(
            select(Insurer.id, Insurer.name_zh)
            .join(InsurerUser, InsurerUser.insurer_id == Insurer.id)
            .where(InsurerUser.user_id == user_id)
        )
    ).all():
        out.append(Context(ContextKind.INSURER, str(iid), name, "insurer"))
    user = await session.get(User, user_id)
    if user is not None and user.is_platform_admin:
        out.append(Context(ContextKind.ADMIN, "", "", "admin"))
    return out


async def scope_for(session: AsyncSession, user_id: uuid.UUID, kind: ContextKind, key: str) -> Scope | None:
    """The scope of one context, re-checked against the database; ``None`` if the user no longer holds it.

    ``session`` must be unscoped-safe: only non-tenant tables are read here, except the insurer's
    consents, which are read through a system-scope session by the caller.
    """
    from portal.models.grid import CommitteeStaff, Grid, WardenAssignment
    from portal.models.tenants import Jurisdiction, RegulatorAssignment

    if kind is ContextKind.MEMBER:
        return Scope.tenant(uuid.UUID(key))  # membership itself is checked under that scope by the caller
    if kind is ContextKind.WARDEN:
        grids = (
            (
                await session.execute(
                    select(WardenAssignment.grid_id).where(WardenAssignment.user_id == user_id)
                )
            )
            .scalars()
            .all()
        )
        return Scope.grids(grids) if grids else None
    if kind is ContextKind.COMMITTEE:
        committee_id = uuid.UUID(key)
        staff = (
            await session.execute(
                select(CommitteeStaff.id).where(
                    CommitteeStaff.user_id == user_id, CommitteeStaff.committee_id == committee_id
                )
            )
        ).first()
        if not staff:
            return None
        grids = (
            (await session.execute(select(Grid.id).where(Grid.committee_id == committee_id))).scalars().all()
        )
        return Scope.grids(grids)
    if kind is ContextKind.REGULATOR:
        path = (
            await session.execute(
                select(Jurisdiction.path)
                .join(RegulatorAssignment, RegulatorAssignment.jurisdiction_id == Jurisdiction.id)
                .where(RegulatorAssignment.user_id == user_id, Jurisdiction.id == uuid.UUID(key))
            )
        ).scalar_one_or_none()
        return Scope.jurisdiction(path) if path else None
    return None


async def consenting_tenants(
    session: AsyncSession, user_id: uuid.UUID, insurer_id: uuid.UUID
) -> Scope | None:
    """An insurer's scope: the tenants whose consent to this insurer is not revoked (system-scope session)."""
    from portal.models.insurer import InsurerUser

    ok = (
        await session.execute(
            select(InsurerUser.id).where(
                and_(InsurerUser.user_id == user_id, InsurerUser.insurer_id == insurer_id)
            )
        )
    ).first()
    if not ok:
        return None
    return await consenting_tenants_of(session, insurer_id)


async def consenting_tenants_of(session: AsyncSession, insurer_id: uuid.UUID) -> Scope:
    """The tenants whose consent to this insurer is in force (system-scope session)."""
    from portal.models.insurer import Consent

    ids = (
        (
            await session.execute(
                select(Consent.tenant_id).where(
                    Consent.insurer_id == insurer_id, Consent.revoked_at.is_(None)
                )
            )
        )
        .scalars()
        .all()
    )
    return Scope.tenants(ids)
