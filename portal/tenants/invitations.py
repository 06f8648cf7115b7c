"""Invitations: the only way an account (or a new role, or a lost passkey) comes into being.

An invitation is a one-time link ``/invite/<token>`` (and its QR code) that grants one role. Only the
token's SHA-256 is stored, so the link can be shown once, right after it is made. Who may invite what
follows the inviter's active role (:class:`Side`): a tenant's manager or responsible person invites into
that tenant; a residents' committee invites wardens for its own grids; a platform admin invites
regulators, committee staff, insurer users and other admins. The tenant, committee or platform always
comes from that side, never from the form. Anything outside the side answers as unknown (404).

A *recovery* invitation (``for_user_id``) adds a passkey to an existing person instead of making one; the
inviter may revoke the person's old passkeys at the same time, which also voids their sessions.

Accepting creates the person, their role, their first passkey and marks the invitation accepted in one
transaction, claimed with a guarded UPDATE so that a link can never be used twice.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from portal.core.audit import services as audit
from portal.core.auth import passkeys
from portal.core.principal import Context, ContextKind
from portal.core.tenancy import Scope, set_scope
from portal.grid import services as grid_services
from portal.grid.models import Committee, CommitteeStaff, Grid, WardenAssignment
from portal.insurer import services as insurer_services
from portal.insurer.models import Insurer, InsurerUser
from portal.tenants import services as tenant_services
from portal.tenants.models import (
    Invitation,
    InvitationKind,
    Jurisdiction,
    MemberRole,
    Membership,
    RegulatorAssignment,
    Tenant,
    User,
)

INVITATION_TTL = timedelta(days=7)
NAME_MAX = 120
ORG_NAME_MAX = 200
INVITING_ROLES = frozenset({MemberRole.MANAGER, MemberRole.RESPONSIBLE})
PLATFORM_KINDS = (
    InvitationKind.REGULATOR,
    InvitationKind.COMMITTEE,
    InvitationKind.INSURER,
    InvitationKind.ADMIN,
)


class InvitationError(ValueError):
    """A refused invitation step; ``code`` names it for a translated message.

    ``not_allowed`` (403), ``unknown`` (404: not on the inviter's side, or no such link), ``expired``,
    ``accepted``, ``revoked``, ``name``, ``role``, ``grid``, ``committee``, ``jurisdiction``, ``insurer``,
    ``org_name``, ``roles_elsewhere``, ``already_holds``.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def status_of(invitation: Invitation, now: datetime | None = None) -> str:
    """``pending``, ``accepted``, ``revoked`` or ``expired``."""
    now = now or datetime.now(UTC)
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


# -- the inviter's side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """The inviter and the part of the world their active role lets them invite into."""

    kind: ContextKind  # MEMBER, COMMITTEE or ADMIN
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None = None
    committee_id: uuid.UUID | None = None


async def side_of(session: AsyncSession, user_id: uuid.UUID, context: Context | None) -> Side:
    """The side of the active context, re-checked here; ``not_allowed`` for roles that do not invite."""
    if context is None:
        raise InvitationError("not_allowed", "no active role")
    if context.kind is ContextKind.MEMBER:
        tenant_id = uuid.UUID(context.key)
        roles = set(
            (
                await session.execute(
                    select(Membership.role).where(
                        Membership.tenant_id == tenant_id, Membership.user_id == user_id
                    )
                )
            ).scalars()
        )
        if roles & INVITING_ROLES:
            return Side(ContextKind.MEMBER, user_id, tenant_id=tenant_id)
    elif context.kind is ContextKind.COMMITTEE:
        committee_id = uuid.UUID(context.key)
        staff = (
            await session.execute(
                select(CommitteeStaff.id).where(
                    CommitteeStaff.committee_id == committee_id, CommitteeStaff.user_id == user_id
                )
            )
        ).first()
        if staff:
            return Side(ContextKind.COMMITTEE, user_id, committee_id=committee_id)
    elif context.kind is ContextKind.ADMIN:
        user = await session.get(User, user_id)
        if user is not None and user.is_platform_admin:
            return Side(ContextKind.ADMIN, user_id)
    raise InvitationError("not_allowed", f"a {context.kind.value} context does not invite")


def _on_side(side: Side) -> list[object]:
    """The WHERE clause of the invitations that belong to the side."""
    if side.kind is ContextKind.MEMBER:
        return [Invitation.tenant_id == side.tenant_id]
    if side.kind is ContextKind.COMMITTEE:
        return [Invitation.kind == InvitationKind.WARDEN, Invitation.committee_id == side.committee_id]
    return [Invitation.kind.in_(PLATFORM_KINDS)]


# -- what an invitation grants ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What an invitation grants, with the objects a page names (tenant, grid, committee...)."""

    kind: InvitationKind
    member_role: MemberRole | None = None
    tenant: Tenant | None = None
    grid: Grid | None = None
    committee: Committee | None = None
    jurisdiction: Jurisdiction | None = None
    insurer: Insurer | None = None
    org_name: str | None = None
    recovery_for: str | None = None  # the person's name, for a recovery invitation


async def _target(session: AsyncSession, inv: Invitation) -> Target:
    async def get(model: type, key: uuid.UUID | None) -> object | None:
        return await session.get(model, key) if key is not None else None

    recovery_for = None
    if inv.for_user_id is not None:
        person = await session.get(User, inv.for_user_id)
        recovery_for = person.display_name if person else inv.invitee_name
    return Target(
        kind=inv.kind,
        member_role=inv.member_role,
        tenant=await get(Tenant, inv.tenant_id),  # type: ignore[arg-type]
        grid=await get(Grid, inv.grid_id),  # type: ignore[arg-type]
        committee=await get(Committee, inv.committee_id),  # type: ignore[arg-type]
        jurisdiction=await get(Jurisdiction, inv.jurisdiction_id),  # type: ignore[arg-type]
        insurer=await get(Insurer, inv.insurer_id),  # type: ignore[arg-type]
        org_name=inv.org_name_zh,
        recovery_for=recovery_for,
    )


@dataclass(frozen=True)
class InvitationView:
    invitation: Invitation
    target: Target
    status: str
    invited_by: str
    accepted_by: str


async def _view(session: AsyncSession, inv: Invitation, now: datetime) -> InvitationView:
    inviter = await session.get(User, inv.invited_by_id) if inv.invited_by_id else None
    acceptor = await session.get(User, inv.accepted_by_id) if inv.accepted_by_id else None
    return InvitationView(
        invitation=inv,
        target=await _target(session, inv),
        status=status_of(inv, now),
        invited_by=inviter.display_name if inviter else "",
        accepted_by=acceptor.display_name if acceptor else "",
    )


# -- creating and revoking (the inviter's side) -------------------------------------------------------


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str  # shown once, never stored
    view: InvitationView


def _clean(value: str | None, limit: int, code: str) -> str:
    text = " ".join((value or "").split())
    if not text or len(text) > limit:
        raise InvitationError(code)
    return text


async def _store(
    session: AsyncSession, side: Side, inv: Invitation, now: datetime, action: str
) -> NewInvitation:
    token = secrets.token_urlsafe(32)
    inv.token_hash = hash_token(token)
    inv.invited_by_id = side.user_id
    session.add(inv)
    await passkeys.ensure_scope(session)
    await session.flush()
    await audit.record(
        session,
        action,
        tenant_id=inv.tenant_id,
        object_type="invitation",
        object_id=inv.id,
        detail={
            "kind": inv.kind.value,
            "member_role": inv.member_role.value if inv.member_role else None,
            "invitee_name": inv.invitee_name,
            "for_user_id": str(inv.for_user_id) if inv.for_user_id else None,
            "grid_id": str(inv.grid_id) if inv.grid_id else None,
            "committee_id": str(inv.committee_id) if inv.committee_id else None,
            "jurisdiction_id": str(inv.jurisdiction_id) if inv.jurisdiction_id else None,
            "insurer_id": str(inv.insurer_id) if inv.insurer_id else None,
            "expires_at": inv.expires_at.isoformat(),
        },
    )
    return NewInvitation(inv, token, await _view(session, inv, now))


async def create_invitation(
    session: AsyncSession,
    side: Side,
    *,
    invitee_name: str,
    kind: InvitationKind,
    member_role: MemberRole | None = None,
    grid_id: uuid.UUID | None = None,
    committee_id: uuid.UUID | None = None,
    jurisdiction_id: uuid.UUID | None = None,
    insurer_id: uuid.UUID | None = None,
    org_name: str | None = None,
    now: datetime | None = None,
    ttl: timedelta = INVITATION_TTL,
) -> NewInvitation:
    """A new invitation from ``side``; the tenant or committee is the side's own."""
    now = now or datetime.now(UTC)
    name = _clean(invitee_name, NAME_MAX, "name")
    inv = Invitation(kind=kind, invitee_name=name, expires_at=now + ttl)
    if side.kind is ContextKind.MEMBER:
        if kind is not InvitationKind.MEMBER:
            raise InvitationError("not_allowed", "a tenant invites members only")
        if member_role is None:
            raise InvitationError("role")
        inv.tenant_id, inv.member_role = side.tenant_id, member_role
    elif side.kind is ContextKind.COMMITTEE:
        if kind is not InvitationKind.WARDEN:
            raise InvitationError("not_allowed", "a committee invites wardens only")
        grid = await session.get(Grid, grid_id) if grid_id else None
        if grid is None or grid.committee_id != side.committee_id:
            raise InvitationError("grid", "not one of the committee's grids")
        inv.grid_id, inv.committee_id = grid.id, side.committee_id
    elif side.kind is ContextKind.ADMIN:
        if kind is InvitationKind.REGULATOR:
            if jurisdiction_id is None or await session.get(Jurisdiction, jurisdiction_id) is None:
                raise InvitationError("jurisdiction")
            inv.jurisdiction_id = jurisdiction_id
            inv.org_name_zh = _clean(org_name, ORG_NAME_MAX, "org_name")
        elif kind is InvitationKind.COMMITTEE:
            if committee_id is None or await session.get(Committee, committee_id) is None:
                raise InvitationError("committee")
            inv.committee_id = committee_id
        elif kind is InvitationKind.INSURER:
            if insurer_id is None or await session.get(Insurer, insurer_id) is None:
                raise InvitationError("insurer")
            inv.insurer_id = insurer_id
        elif kind is not InvitationKind.ADMIN:
            raise InvitationError("not_allowed", "the platform does not invite tenant members or wardens")
    else:
        raise InvitationError("not_allowed")
    return await _store(session, side, inv, now, "invitation.created")


@dataclass(frozen=True)
class Person:
    user_id: uuid.UUID
    display_name: str
    login: str


async def people_of(session: AsyncSession, side: Side) -> list[Person]:
    """The people the side may make a recovery invitation for (not the inviter)."""
    if side.kind is ContextKind.MEMBER:
        stmt = (
            select(User.id, User.display_name, User.login)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == side.tenant_id)
        )
    elif side.kind is ContextKind.COMMITTEE:
        stmt = (
            select(User.id, User.display_name, User.login)
            .join(WardenAssignment, WardenAssignment.user_id == User.id)
            .join(Grid, Grid.id == WardenAssignment.grid_id)
            .where(Grid.committee_id == side.committee_id)
        )
    else:
        stmt = select(User.id, User.display_name, User.login).where(
            User.id.in_(select(RegulatorAssignment.user_id))
            | User.id.in_(select(CommitteeStaff.user_id))
            | User.id.in_(select(InsurerUser.user_id))
            | User.is_platform_admin.is_(True)
        )
    rows = (await session.execute(stmt.where(User.active.is_(True), User.id != side.user_id))).all()
    people = {r[0]: Person(r[0], r[1], r[2]) for r in rows}
    return sorted(people.values(), key=lambda p: (p.display_name, p.login))


async def _recoverable(session: AsyncSession, side: Side, user_id: uuid.UUID) -> Person | None:
    if side.kind is ContextKind.ADMIN:  # the platform recovers anyone (but not itself: it is signed in)
        user = await session.get(User, user_id)
        if user is None or not user.active or user.id == side.user_id:
            return None
        return Person(user.id, user.display_name, user.login)
    return next((p for p in await people_of(session, side) if p.user_id == user_id), None)


async def user_id_by_login(session: AsyncSession, login: str) -> uuid.UUID | None:
    """For the platform's recovery form, which names the person by login (there is no list of everyone)."""
    login = login.strip()
    if not login:
        return None
    return (await session.execute(select(User.id).where(User.login == login))).scalar_one_or_none()


def _roles_within_side(side: Side, roles: Sequence[Context]) -> bool:
    if side.kind is ContextKind.ADMIN:
        return True
    if side.kind is ContextKind.MEMBER:
        return all(c.kind is ContextKind.MEMBER and c.key == str(side.tenant_id) for c in roles)
    return all(c.kind is ContextKind.WARDEN for c in roles)  # and every grid the committee's (below)


async def create_recovery(
    session: AsyncSession,
    side: Side,
    *,
    user_id: uuid.UUID,
    roles: Sequence[Context],
    revoke_old: bool = False,
    now: datetime | None = None,
    ttl: timedelta = INVITATION_TTL,
) -> NewInvitation:
    """A recovery invitation: accepting it adds a passkey to the person ``user_id``.

    ``roles`` are every role the person holds (the caller reads them under the system scope). A side may
    recover only a person whose roles are all on that side, so a manager of one unit can never take over
    someone's role in another; platform admins recover anyone. ``revoke_old`` revokes the person's
    passkeys now and voids their sessions (a lost or stolen phone).
    """
    now = now or datetime.now(UTC)
    person = await _recoverable(session, side, user_id)
    if person is None:
        raise InvitationError("unknown", "not a person of the inviter's side")
    if not _roles_within_side(side, roles):
        raise InvitationError("roles_elsewhere")
    if side.kind is ContextKind.COMMITTEE:
        foreign_grid = (
            await session.execute(
                select(WardenAssignment.id)
                .join(Grid, Grid.id == WardenAssignment.grid_id)
                .where(WardenAssignment.user_id == user_id, Grid.committee_id != side.committee_id)
                .limit(1)
            )
        ).first()
        if foreign_grid:
            raise InvitationError("roles_elsewhere")
    kind = {
        ContextKind.MEMBER: InvitationKind.MEMBER,
        ContextKind.COMMITTEE: InvitationKind.WARDEN,
    }.get(side.kind, InvitationKind.ADMIN)
    inv = Invitation(
        kind=kind,
        invitee_name=person.display_name,
        tenant_id=side.tenant_id,
        committee_id=side.committee_id,
        for_user_id=user_id,
        expires_at=now + ttl,
    )
    if revoke_old:
        await passkeys.ensure_scope(session)
        await passkeys.revoke_all(session, user_id, reason="recovery")
    return await _store(session, side, inv, now, "invitation.recovery_created")


async def list_invitations(
    session: AsyncSession, side: Side, *, now: datetime | None = None, limit: int = 200
) -> list[InvitationView]:
    """The side's invitations, newest first, with their status (never their link)."""
    now = now or datetime.now(UTC)
    rows = (
        (
            await session.execute(
                select(Invitation)
                .where(*_on_side(side))  # type: ignore[arg-type]
                .order_by(Invitation.created_at.desc())
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    return [await _view(session, inv, now) for inv in rows]


async def revoke_invitation(
    session: AsyncSession, side: Side, invitation_id: uuid.UUID, *, now: datetime | None = None
) -> Invitation | None:
    """Revoke a pending invitation of the side; ``None`` if it is not the side's (the route answers 404).
    An accepted, expired or already revoked one is left as it is."""
    now = now or datetime.now(UTC)
    inv = (
        await session.execute(
            select(Invitation).where(Invitation.id == invitation_id, *_on_side(side))  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()
    if inv is None:
        return None
    if status_of(inv, now) == "pending":
        inv.revoked_at = now
        await passkeys.ensure_scope(session)
        await session.flush()
        await audit.record(
            session,
            "invitation.revoked",
            tenant_id=inv.tenant_id,
            object_type="invitation",
            object_id=inv.id,
            detail={"kind": inv.kind.value, "invitee_name": inv.invitee_name},
        )
    return inv


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
    return Offer(await _view(session, inv, now or datetime.now(UTC)), inv.token_hash)


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
    name = _clean(display_name, NAME_MAX, "name")
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
        name = _clean(display_name, NAME_MAX, "name")
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
    await _claim(session, inv, now)
    with _acting_as(user):
        await _grant(session, inv, user)
        inv.accepted_by_id = user.id
        await session.flush()
        await _record_acceptance(session, inv, user, "signed_in")
    return Accepted(user, _context_token(inv))


# -- choices for the admin's forms --------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformChoices:
    jurisdictions: Sequence[Jurisdiction]
    committees: Sequence[Committee]
    insurers: Sequence[Insurer]


async def platform_choices(session: AsyncSession) -> PlatformChoices:
    return PlatformChoices(
        jurisdictions=(await session.execute(select(Jurisdiction).order_by(Jurisdiction.path)))
        .scalars()
        .all(),
        committees=(await session.execute(select(Committee).order_by(Committee.code))).scalars().all(),
        insurers=(await session.execute(select(Insurer).order_by(Insurer.code))).scalars().all(),
    )


async def committee_grids(session: AsyncSession, side: Side) -> Sequence[Grid]:
    if side.committee_id is None:
        return []
    stmt = select(Grid).where(Grid.committee_id == side.committee_id).order_by(Grid.code)
    return (await session.execute(stmt)).scalars().all()
