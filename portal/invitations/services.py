"""Invitations: the only way an account (or a new role, or a lost passkey) comes into being.

An invitation is a one-time link ``/invite/<token>`` (and its QR code) that grants one role. Only the
token's SHA-256 is stored, so the link can be shown once, right after it is made. Who may invite what
follows the inviter's active role (:class:`Side`): a tenant's manager or responsible person invites into
that tenant; a residents' committee invites wardens for its own grids; a platform admin invites
regulators, committee staff, insurer users and other admins. The tenant, committee or platform always
comes from that side, never from the form. Anything outside the side answers as unknown (404).

This module is the inviter's side (creating, listing, revoking). A *recovery* invitation, which adds a
passkey to an existing person, is made in ``invitation_recovery.py``; the invitee's side (opening the
link, registering, accepting) is ``invitation_acceptance.py``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.identity import passkeys
from portal.identity.principal import Context, ContextKind
from portal.models.grid import Committee, CommitteeStaff, Grid
from portal.models.identity import User
from portal.models.insurer import Insurer
from portal.models.tenants import Invitation, InvitationKind, Jurisdiction, MemberRole, Membership, Tenant
from portal.tenants import policies as tenant_policies
from portal.tenants.services import responsible_count, roles_of

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


async def view_of(session: AsyncSession, inv: Invitation, now: datetime) -> InvitationView:
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


def clean_field(value: str | None, limit: int, code: str) -> str:
    text = " ".join((value or "").split())
    if not text or len(text) > limit:
        raise InvitationError(code)
    return text


async def store_invitation(
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
    return NewInvitation(inv, token, await view_of(session, inv, now))


async def grantable_roles(session: AsyncSession, side: Side) -> list[MemberRole]:
    """The roles a unit's inviter may give (what the invitation form offers; the same rule refuses the
    rest in :func:`create_invitation`)."""
    if side.kind is not ContextKind.MEMBER or side.tenant_id is None:
        return []
    mine = await roles_of(session, side.tenant_id, side.user_id)
    has_responsible = await responsible_count(session, side.tenant_id) > 0
    return [
        r for r in MemberRole if tenant_policies.may_grant_role(mine, r, unit_has_responsible=has_responsible)
    ]


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
    name = clean_field(invitee_name, NAME_MAX, "name")
    inv = Invitation(kind=kind, invitee_name=name, expires_at=now + ttl)
    if side.kind is ContextKind.MEMBER:
        if kind is not InvitationKind.MEMBER:
            raise InvitationError("not_allowed", "a tenant invites members only")
        if member_role is None:
            raise InvitationError("role")
        assert side.tenant_id is not None
        if not tenant_policies.may_grant_role(
            await roles_of(session, side.tenant_id, side.user_id),
            member_role,
            unit_has_responsible=await responsible_count(session, side.tenant_id) > 0,
        ):
            raise InvitationError("role_above_yours")
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
            inv.org_name_zh = clean_field(org_name, ORG_NAME_MAX, "org_name")
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
    return await store_invitation(session, side, inv, now, "invitation.created")


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
    return [await view_of(session, inv, now) for inv in rows]


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
