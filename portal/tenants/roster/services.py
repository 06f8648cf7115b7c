"""Managing a tenant's roster: changing a member's role and removing a member. The only place that does.

A roster row is one membership: one person holding one role (a small place's owner may hold two rows,
responsible person and manager). The rules, each a :class:`RosterRefused` code for a translated message:

* ``not_allowed`` — only the unit's manager or responsible person manages its roster (staff never do);
* ``not_found`` — the membership is not one of this tenant's (another tenant's id answers 404);
* ``bad_role`` — the new role is not one of responsible / manager / staff;
* ``same_role`` — the person already holds that role through this row: nothing to change;
* ``already_holds`` — the person holds the new role through another row (remove this one instead);
* ``responsible_only`` — the responsible person (消防安全责任人) is the unit's head in law; a manager
  neither appoints one nor withdraws one. The one exception: a unit with no responsible person at all,
  where a manager may appoint the first (the unit cannot run its cycle without one);
* ``last_responsible`` — a tenant keeps at least one responsible person, so the last one is neither
  demoted nor removed (nor steps down themselves) until another one is appointed.

Every change is an audit entry in the tenant's chain and re-computes the tenant's readiness (through the
outbox, as adding a member does). Changes of one tenant's roster are serialised (the tenant row is locked
on PostgreSQL; SQLite has one writer at a time), so two people demoting each other at the same moment
cannot leave the unit without a responsible person.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core import outbox
from portal.core.tenancy import require_scope
from portal.models.identity import User
from portal.models.tenants import MemberRole, Membership, Tenant
from portal.tenants import policies
from portal.tenants.services import READINESS_TOPIC, responsible_count, roles_of


class RosterRefused(ValueError):
    """A roster change the rules refuse; ``code`` names the rule (see the module's docstring)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Member:
    """One roster row with the person's name and the roles they hold through their other rows."""

    membership_id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    role: MemberRole
    other_roles: frozenset[MemberRole]


def parse_role(value: str) -> MemberRole:
    try:
        return MemberRole(value.strip())
    except ValueError:
        raise RosterRefused("bad_role") from None


async def _lock_roster(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Serialise roster changes of one tenant until the transaction ends (PostgreSQL: a row lock on the
    tenant; SQLite allows one writer at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


async def get_member(session: AsyncSession, tenant_id: uuid.UUID, membership_id: uuid.UUID) -> Member | None:
    """The roster row ``membership_id`` of ``tenant_id`` in the session's scope, else ``None`` (404)."""
    require_scope(session)
    row = (
        await session.execute(
            select(Membership.id, Membership.user_id, User.display_name, Membership.role)
            .join(User, User.id == Membership.user_id)
            .where(Membership.id == membership_id, Membership.tenant_id == tenant_id)
        )
    ).one_or_none()
    if row is None:
        return None
    others = await roles_of(session, tenant_id, row[1])
    return Member(row[0], row[1], row[2], row[3], frozenset(others - {row[3]}))


async def _actor_roles(session: AsyncSession, tenant_id: uuid.UUID, actor_id: uuid.UUID) -> set[MemberRole]:
    roles = await roles_of(session, tenant_id, actor_id)
    if not policies.may_manage_roster(roles):
        raise RosterRefused("not_allowed")
    return roles


async def _target(session: AsyncSession, tenant_id: uuid.UUID, membership_id: uuid.UUID) -> Member:
    member = await get_member(session, tenant_id, membership_id)
    if member is None:
        raise RosterRefused("not_found")
    return member


async def _check_leaving_responsible(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """A responsible person is about to stop being one: never the last. (Only a responsible person gets
    this far, so the last one is always the person asking: stepping down needs a successor first.)"""
    if await responsible_count(session, tenant_id) <= 1:
        raise RosterRefused("last_responsible")


async def check_change(
    session: AsyncSession, tenant_id: uuid.UUID, membership_id: uuid.UUID, role: str, *, actor_id: uuid.UUID
) -> tuple[Member, MemberRole]:
    """The row and the new role if ``actor_id`` may make the change, else :class:`RosterRefused`."""
    actor_roles = await _actor_roles(session, tenant_id, actor_id)
    member = await _target(session, tenant_id, membership_id)
    new = parse_role(role)
    if new is member.role:
        raise RosterRefused("same_role")
    if new in member.other_roles:
        raise RosterRefused("already_holds")
    has_responsible = await responsible_count(session, tenant_id) > 0
    if not policies.may_grant_role(actor_roles, new, unit_has_responsible=has_responsible):
        raise RosterRefused("responsible_only")
    if member.role is MemberRole.RESPONSIBLE and MemberRole.RESPONSIBLE not in actor_roles:
        raise RosterRefused("responsible_only")  # the responsible role is taken away only by its holder
    if member.role is MemberRole.RESPONSIBLE:
        await _check_leaving_responsible(session, tenant_id)
    return member, new


async def check_remove(
    session: AsyncSession, tenant_id: uuid.UUID, membership_id: uuid.UUID, *, actor_id: uuid.UUID
) -> Member:
    """The row if ``actor_id`` may remove it, else :class:`RosterRefused` (the confirmation page asks
    this first, so that it never offers a removal that would be refused)."""
    actor_roles = await _actor_roles(session, tenant_id, actor_id)
    member = await _target(session, tenant_id, membership_id)
    if member.role is MemberRole.RESPONSIBLE:
        if MemberRole.RESPONSIBLE not in actor_roles:
            raise RosterRefused("responsible_only")
        await _check_leaving_responsible(session, tenant_id)
    return member


async def change_role(
    session: AsyncSession, tenant_id: uuid.UUID, membership_id: uuid.UUID, role: str, *, actor_id: uuid.UUID
) -> Member:
    """Give the row ``membership_id`` the role ``role``. Returns the row as it was before."""
    await _lock_roster(session, tenant_id)
    member, new = await check_change(session, tenant_id, membership_id, role, actor_id=actor_id)
    row = await session.get(Membership, member.membership_id)
    assert row is not None  # just read under the same scope and lock
    row.role = new
    await session.flush()
    await audit.record(
        session,
        "member.role_changed",
        tenant_id=tenant_id,
        object_type="membership",
        object_id=member.membership_id,
        detail={
            "user_id": str(member.user_id),
            "display_name": member.display_name,
            "from": member.role.value,
            "to": new.value,
        },
    )
    await outbox.emit(session, READINESS_TOPIC, {"tenant_id": str(tenant_id)}, tenant_id=tenant_id)
    return member


async def remove_member(
    session: AsyncSession, tenant_id: uuid.UUID, membership_id: uuid.UUID, *, actor_id: uuid.UUID
) -> Member:
    """Remove the row ``membership_id`` (the person keeps their other roles, if any). Returns it.

    The person's open sessions lose this role on their next request: roles are re-read every time."""
    await _lock_roster(session, tenant_id)
    member = await check_remove(session, tenant_id, membership_id, actor_id=actor_id)
    row = await session.get(Membership, member.membership_id)
    assert row is not None
    await session.delete(row)
    await session.flush()
    await audit.record(
        session,
        "member.removed",
        tenant_id=tenant_id,
        object_type="membership",
        object_id=member.membership_id,
        detail={
            "user_id": str(member.user_id),
            "display_name": member.display_name,
            "role": member.role.value,
            "remaining_roles": sorted(r.value for r in member.other_roles),
        },
    )
    await outbox.emit(session, READINESS_TOPIC, {"tenant_id": str(tenant_id)}, tenant_id=tenant_id)
    return member
