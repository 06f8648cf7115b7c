"""The invitee's side of an invitation: opening the link, registering a passkey, accepting.

Accepting creates the person, their role, their first passkey and marks the invitation accepted in one
transaction, claimed with a guarded UPDATE so that a link can never be used twice.
"""

from __future__ import annotations

import secrets
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from portal.audit import services as audit
from portal.core.tenancy import Scope, set_scope
from portal.grid import services as grid_services
from portal.identity import passkeys
from portal.identity.principal import ContextKind
from portal.insurer import services as insurer_services
from portal.invitations import recovery
from portal.invitations.services import (
    NAME_MAX,
    InvitationError,
    InvitationView,
    clean_field,
    hash_token,
    status_of,
    view_of,
)
from portal.models.grid import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.models.identity import User
from portal.models.insurer import Insurer, InsurerUser
from portal.models.tenants import (
    Invitation,
    InvitationKind,
    Jurisdiction,
    Membership,
    RegulatorAssignment,
    Tenant,
)
from portal.tenants import services as tenant_services

# -- the invitee's side -------------------------------------------------------------------------------


def _grant_scope(inv: Invitation) -> Scope:
    """The scope of the transaction that reads and accepts ``inv``: exactly the tenant it grants a role in,
    else no tenant at all (the other roles write non-tenant rows and platform-chain audit entries)."""
    if inv.tenant_id is not None:
        return Scope.tenant(inv.tenant_id)
    return passkeys.PLATFORM_ONLY


async def _by_token(session: AsyncSession, token: str) -> Invitation | None:
    if not token or len(token) > 200:
        return None
    return (
        await session.execute(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Offer:
    """What the invitee sees: the grant, who invited, and whether the link still works."""

    view: InvitationView
    token_hash: str

    @property
    def invitation(self) -> Invitation:
        return self.view.invitation

    @property
    def status(self) -> str:
        return self.view.status


async def open_invitation(session: AsyncSession, token: str, *, now: datetime | None = None) -> Offer | None:
    """The invitation behind ``token`` (whatever its status), or ``None`` if there is none.

    Binds the session to the scope the invitation grants: the invitation itself is the authority here.
    """
    inv = await _by_token(session, token)
    if inv is None:
        return None
    await set_scope(session, _grant_scope(inv))
    return Offer(await view_of(session, inv, now or datetime.now(UTC)), inv.token_hash)


def _require_pending(offer: Offer | None) -> Invitation:
    if offer is None:
        raise InvitationError("unknown")
    if offer.status != "pending":
        raise InvitationError(offer.status)
    return offer.invitation


@dataclass(frozen=True)
class Registration:
    """Who the passkey about to be created is for (the WebAuthn user handle and names)."""

    user_id: uuid.UUID
    user_name: str
    display_name: str
    exclude: list[bytes]
    token_hash: str


async def begin_acceptance(
    session: AsyncSession, token: str, *, display_name: str, now: datetime | None = None
) -> Registration:
    """Check the link and the name, and choose the account the new passkey will belong to."""
    inv = _require_pending(await open_invitation(session, token, now=now))
    if inv.for_user_id is not None:
        person = await session.get(User, inv.for_user_id)
        if person is None or not person.active:
            raise InvitationError("unknown", "the person of this recovery is gone")
        return Registration(
            person.id,
            person.display_name,
            person.display_name,
            await passkeys.credential_ids(session, person.id),
            inv.token_hash,
        )
    name = clean_field(display_name, NAME_MAX, "name")
    return Registration(uuid7(), name, name, [], inv.token_hash)


@dataclass(frozen=True)
class Accepted:
    user: User
    context_token: str | None  # the role just granted, to make it the active one; None for a recovery


def _context_token(inv: Invitation) -> str | None:
    if inv.for_user_id is not None:
        return None
    key = {
        InvitationKind.MEMBER: inv.tenant_id,
        InvitationKind.COMMITTEE: inv.committee_id,
        InvitationKind.REGULATOR: inv.jurisdiction_id,
        InvitationKind.INSURER: inv.insurer_id,
    }.get(inv.kind)
    kind = {
        InvitationKind.MEMBER: ContextKind.MEMBER,
        InvitationKind.WARDEN: ContextKind.WARDEN,
        InvitationKind.COMMITTEE: ContextKind.COMMITTEE,
        InvitationKind.REGULATOR: ContextKind.REGULATOR,
        InvitationKind.INSURER: ContextKind.INSURER,
        InvitationKind.ADMIN: ContextKind.ADMIN,
    }[inv.kind]
    return f"{kind.value}:{key or ''}"


async def _claim(session: AsyncSession, inv: Invitation, now: datetime) -> None:
    """Mark the invitation accepted if, and only if, it is still pending (atomic: one winner)."""
    result = await session.execute(
        update(Invitation)
        .where(
            and_(
                Invitation.id == inv.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
        )
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        await session.refresh(inv)
        raise InvitationError(status_of(inv, now) if status_of(inv, now) != "pending" else "accepted")
    inv.accepted_at = now


async def _holds(session: AsyncSession, inv: Invitation, user: User) -> bool:
    if inv.kind is InvitationKind.MEMBER:
        stmt = select(Membership.id).where(
            Membership.tenant_id == inv.tenant_id,
            Membership.user_id == user.id,
            Membership.role == inv.member_role,
        )
    elif inv.kind is InvitationKind.WARDEN:
        stmt = select(WardenAssignment.id).where(
            WardenAssignment.grid_id == inv.grid_id, WardenAssignment.user_id == user.id
        )
    elif inv.kind is InvitationKind.COMMITTEE:
        stmt = select(CommitteeStaff.id).where(
            CommitteeStaff.committee_id == inv.committee_id, CommitteeStaff.user_id == user.id
        )
    elif inv.kind is InvitationKind.REGULATOR:
        stmt = select(RegulatorAssignment.id).where(
            RegulatorAssignment.jurisdiction_id == inv.jurisdiction_id, RegulatorAssignment.user_id == user.id
        )
    elif inv.kind is InvitationKind.INSURER:
        stmt = select(InsurerUser.id).where(
            InsurerUser.insurer_id == inv.insurer_id, InsurerUser.user_id == user.id
        )
    else:
        return user.is_platform_admin
    return (await session.execute(stmt.limit(1))).first() is not None


async def _grant(session: AsyncSession, inv: Invitation, user: User) -> None:
    if inv.kind is InvitationKind.MEMBER:
        tenant = await session.get(Tenant, inv.tenant_id)
        if tenant is None or inv.member_role is None:
            raise InvitationError("unknown", "the tenant is gone")
        await tenant_services.add_member(session, tenant, user, inv.member_role)
    elif inv.kind is InvitationKind.WARDEN:
        grid = await session.get(Grid, inv.grid_id)
        if grid is None:
            raise InvitationError("unknown", "the grid is gone")
        await grid_services.assign_warden(session, grid, user)
    elif inv.kind is InvitationKind.COMMITTEE:
        committee = await session.get(Committee, inv.committee_id)
        if committee is None:
            raise InvitationError("unknown", "the committee is gone")
        await grid_services.add_committee_staff(session, committee, user)
    elif inv.kind is InvitationKind.REGULATOR:
        jurisdiction = await session.get(Jurisdiction, inv.jurisdiction_id)
        if jurisdiction is None:
            raise InvitationError("unknown", "the jurisdiction is gone")
        await tenant_services.assign_regulator(
            session, user, jurisdiction, org_name_zh=inv.org_name_zh or "", org_name_en=""
        )
    elif inv.kind is InvitationKind.INSURER:
        insurer = await session.get(Insurer, inv.insurer_id)
        if insurer is None:
            raise InvitationError("unknown", "the insurer is gone")
        await insurer_services.add_insurer_user(session, insurer, user)
    else:
        user.is_platform_admin = True
        await session.flush()


def _acting_as(user: User) -> AbstractContextManager[None]:
    """Attribute what the acceptance writes to the person accepting (the request's actor is anonymous)."""
    actor = audit.current_actor()
    return audit.acting_as(
        audit.Actor(
            label=f"{user.display_name} ({user.login})",
            user_id=user.id,
            ip=actor.ip,
            request_id=actor.request_id,
        )
    )


async def _record_acceptance(session: AsyncSession, inv: Invitation, user: User, how: str) -> None:
    await audit.record(
        session,
        "invitation.accepted",
        tenant_id=inv.tenant_id,
        object_type="invitation",
        object_id=inv.id,
        detail={
            "kind": inv.kind.value,
            "member_role": inv.member_role.value if inv.member_role else None,
            "user_id": str(user.id),
            "recovery": inv.for_user_id is not None,
            "how": how,
        },
    )


async def accept_with_passkey(
    session: AsyncSession,
    token: str,
    credential: passkeys.NewCredential,
    *,
    display_name: str,
    passkey_name: str,
    now: datetime | None = None,
) -> Accepted:
    """Accept with a freshly verified passkey: the new person (or, for a recovery, the existing one), their
    role, the passkey and the accepted mark, in the caller's one transaction."""
    now = now or datetime.now(UTC)
    inv = _require_pending(await open_invitation(session, token, now=now))
    if inv.for_user_id is not None:
        if credential.user_id != inv.for_user_id:
            raise InvitationError("unknown", "the passkey was made for someone else")
        user = await session.get(User, inv.for_user_id)
        if user is None or not user.active:
            raise InvitationError("unknown", "the person of this recovery is gone")
    else:
        name = clean_field(display_name, NAME_MAX, "name")
        user = User(id=credential.user_id, login=f"u.{secrets.token_hex(5)}", display_name=name)
    await _claim(session, inv, now)
    with _acting_as(user):
        if inv.for_user_id is None:
            session.add(user)
            await session.flush()
            await _grant(session, inv, user)
        await passkeys.add_passkey(session, credential, name=passkey_name)
        inv.accepted_by_id = user.id
        await session.flush()
        await _record_acceptance(session, inv, user, "passkey")
        if inv.for_user_id is not None:
            await recovery.announce(session, inv, user.id)
    return Accepted(user, _context_token(inv))


async def accept_signed_in(
    session: AsyncSession, token: str, user_id: uuid.UUID, *, now: datetime | None = None
) -> Accepted:
    """A signed-in person takes the role for their own account (no new passkey needed)."""
    now = now or datetime.now(UTC)
    inv = _require_pending(await open_invitation(session, token, now=now))
    if inv.for_user_id is not None:
        raise InvitationError("unknown", "a recovery invitation adds a passkey, it grants no role")
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise InvitationError("unknown")
    if await _holds(session, inv, user):
        raise InvitationError("already_holds")
    if inv.invited_by_id == user.id:
        # An invitation is for someone else: accepting one's own would grant oneself any role it names
        # (a manager naming the unit's first responsible person must not become it that way).
        raise InvitationError("own_invitation")
    await _claim(session, inv, now)
    with _acting_as(user):
        await _grant(session, inv, user)
        inv.accepted_by_id = user.id
        await session.flush()
        await _record_acceptance(session, inv, user, "signed_in")
    return Accepted(user, _context_token(inv))
