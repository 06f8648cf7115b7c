"""Recovery invitations: a new passkey for someone who already has an account (a lost phone).

The inviter picks a person on their own side (:func:`people_of`); the invitation carries ``for_user_id``
and, optionally, revokes the person's old passkeys (which also voids their sessions) when it is accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.i18n import _
from portal.identity import passkeys
from portal.identity.principal import Context, ContextKind
from portal.invitations.services import INVITATION_TTL, InvitationError, NewInvitation, Side, store_invitation
from portal.models.grid import CommitteeStaff, Grid, WardenAssignment
from portal.models.identity import User
from portal.models.insurer import InsurerUser
from portal.models.tenants import Invitation, InvitationKind, Membership, RegulatorAssignment
from portal.notify.services import notify_in_own_language
from portal.tenants import policies as tenant_policies
from portal.tenants.services import roles_of


@dataclass(frozen=True)
class Person:
    user_id: uuid.UUID
    display_name: str
    login: str


async def people_of(session: AsyncSession, side: Side) -> list[Person]:
    """The people the side may make a recovery invitation for (not the inviter, nobody above them)."""
    people = await _people_on_side(session, side)
    if side.kind is ContextKind.MEMBER:  # nobody above the inviter: the rule create_recovery enforces
        assert side.tenant_id is not None
        mine = await roles_of(session, side.tenant_id, side.user_id)
        people = [
            p
            for p in people
            if tenant_policies.may_recover(mine, await roles_of(session, side.tenant_id, p.user_id))
        ]
    return people


async def _people_on_side(session: AsyncSession, side: Side) -> list[Person]:
    """Everyone on the inviter's side (their unit, their committee's wardens, the platform's people)."""
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
    return next((p for p in await _people_on_side(session, side) if p.user_id == user_id), None)


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
    if side.kind is ContextKind.MEMBER:
        assert side.tenant_id is not None
        if not tenant_policies.may_recover(
            await roles_of(session, side.tenant_id, side.user_id),
            await roles_of(session, side.tenant_id, user_id),
        ):
            raise InvitationError("role_above_yours")
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
    new = await store_invitation(session, side, inv, now, "invitation.recovery_created")
    await announce(session, new.invitation, user_id, made_by=side.user_id)
    return new


async def announce(
    session: AsyncSession, invitation: Invitation, user_id: uuid.UUID, *, made_by: uuid.UUID | None = None
) -> None:
    """Tell the account's owner, in the inbox and by e-mail when they have an address: a recovery link was
    made for their account (``made_by``), or (without it) a passkey was just added through one. Whoever
    holds the link can add a passkey to the account, so its owner hears of it at once, from us."""
    inviter = await session.get(User, made_by) if made_by else None

    def message() -> tuple[str, str]:
        if inviter is not None:
            return _("A recovery link was made for your account"), _(
                "%(name)s made a one-time link that adds a new passkey to your account. If you did not "
                "ask for it, tell them, or your unit's responsible person, at once.",
                name=inviter.display_name,
            )
        return _("A new passkey was added to your account"), _(
            "It was added with a recovery link. If it was not you, tell whoever made the link at once; "
            "on your passkeys page you can revoke it."
        )

    step = "made" if inviter is not None else "used"
    await notify_in_own_language(
        session,
        [user_id],
        f"account.recovery_{step}",
        message,
        "/account/passkeys",
        f"recovery:{step}:{invitation.id}",
        tenant_id=invitation.tenant_id,
    )
