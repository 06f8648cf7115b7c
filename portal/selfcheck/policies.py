"""Who may do what in the tenant's cycle: one named rule per action.

Each rule is used twice. The service that does the action enforces it (raising
:class:`~portal.core.errors.NotAllowed`, whichever route or job called it, with the roles read from the
database), and the page that offers the action asks the same function whether to show its link or button,
so nobody is shown a button that would refuse them. The rules look at roles and at the object's state,
never at which tenant: the scope already keeps other tenants' objects out of reach (404).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from portal.core.i18n import N_
from portal.identity import access
from portal.identity.principal import ContextKind, Principal
from portal.models.selfcheck import (
    Commitment,
    CommitmentStatus,
    Hazard,
    HazardStatus,
    SelfCheck,
    SelfCheckStatus,
    Severity,
)
from portal.models.tenants import MemberRole
from portal.tenants.policies import ANSWERABLE  # the manager and the responsible person

# The cycle's pages: the tenant's members, and from outside the grid's people and the regulator (insurers
# never see self-checks or hazards, only the risk status they were granted).
CYCLE_PAGES = access.member() | access.cross_tenant(
    ContextKind.WARDEN, ContextKind.COMMITTEE, ContextKind.REGULATOR
)

# The accountability ledger names people and their lapses: the two who answer for the unit, the grid
# warden and the regulator (the ladder's steps).
LEDGER_PAGE = access.member(MemberRole.MANAGER, MemberRole.RESPONSIBLE) | access.cross_tenant(
    ContextKind.WARDEN, ContextKind.REGULATOR
)


# Why a rule said no, shown to the person (translated where it is shown).
ONLY_ANSWERABLE_FILL_IN = N_("Only the manager or the responsible person fills in the self-check.")
ONLY_ANSWERABLE_PREPARE = N_("Only the manager or the responsible person prepares the commitment.")


class ActorKind(enum.StrEnum):
    MEMBER = "member"  # someone of the tenant itself
    WARDEN = "warden"
    REGULATOR = "regulator"
    SYSTEM = "system"


@dataclass(frozen=True)
class HazardActor:
    """Who takes a step on a hazard: a member of the tenant, or someone from outside it."""

    kind: ActorKind
    user_id: uuid.UUID | None
    can_verify: bool = False  # a member: manager or responsible person (staff cannot verify)

    @property
    def outside(self) -> bool:
        return self.kind in (ActorKind.WARDEN, ActorKind.REGULATOR)


_OUTSIDE = {
    ContextKind.WARDEN: ActorKind.WARDEN,
    ContextKind.COMMITTEE: ActorKind.WARDEN,
    ContextKind.REGULATOR: ActorKind.REGULATOR,
}


def hazard_actor(me: Principal, roles: Collection[MemberRole] = ()) -> HazardActor | None:
    """The person as a hazard actor (``None``: insurers and others, who never see hazards). ``roles``:
    what they hold in the hazard's tenant, read from the database by the caller."""
    if me.kind in _OUTSIDE:
        return HazardActor(_OUTSIDE[me.kind], me.user_id)
    if me.kind is ContextKind.MEMBER:
        return HazardActor(ActorKind.MEMBER, me.user_id, can_verify=bool(ANSWERABLE & set(roles)))
    return None


def may_read_ledger(me: Principal) -> bool:
    """Open the tenant's accountability ledger."""
    return access.allows(LEDGER_PAGE, me)


# -- the monthly self-check -----------------------------------------------------------------------------


def may_answer(roles: Collection[MemberRole], sc: SelfCheck | None = None) -> bool:
    """Answer the month's self-check item by item, and submit it: the manager or the responsible person,
    while it is still open (with ``sc``)."""
    open_ = sc is None or sc.status in (SelfCheckStatus.DUE, SelfCheckStatus.IN_PROGRESS)
    return bool(ANSWERABLE & set(roles)) and open_


def why_not_sign_report(roles: Collection[MemberRole], sc: SelfCheck) -> str | None:
    """Why this person may not sign the monthly report now (a refusal code), or ``None``: they may."""
    if sc.status is SelfCheckStatus.SIGNED:
        return "already_signed"
    if sc.status is not SelfCheckStatus.SUBMITTED:
        return "not_submitted"
    if MemberRole.RESPONSIBLE not in roles:
        return "only_responsible_signs"
    return None


def may_sign_report(roles: Collection[MemberRole], sc: SelfCheck) -> bool:
    """Sign the submitted monthly report with a passkey: the responsible person only, once."""
    return why_not_sign_report(roles, sc) is None


# -- the annual commitment ------------------------------------------------------------------------------


def may_prepare_commitment(roles: Collection[MemberRole], commitment: Commitment | None = None) -> bool:
    """Prepare the year's commitment (fix its text for signing): the manager or the responsible person,
    while it is not signed."""
    unsigned = commitment is None or commitment.status is not CommitmentStatus.SIGNED
    return bool(ANSWERABLE & set(roles)) and unsigned


def why_not_sign_commitment(
    user_id: uuid.UUID, roles: Collection[MemberRole], commitment: Commitment | None
) -> str | None:
    """Why this person may not sign the year's commitment now (a refusal code), or ``None``: they may."""
    if commitment is None:
        return "not_prepared"
    if commitment.status is CommitmentStatus.SIGNED:
        return "already_signed"
    # The person named in the text, and still the responsible person when they sign.
    if commitment.responsible_id != user_id or MemberRole.RESPONSIBLE not in roles:
        return "only_responsible_signs"
    return None


def may_sign_commitment(
    user_id: uuid.UUID, roles: Collection[MemberRole], commitment: Commitment | None
) -> bool:
    """Sign the prepared commitment with a passkey: the responsible person named in it, once."""
    return why_not_sign_commitment(user_id, roles, commitment) is None


# -- hazards --------------------------------------------------------------------------------------------


def may_verify_hazard(actor: HazardActor, hazard: Hazard | None = None) -> bool:
    """Accept or send back a rectification. A suspected major hazard only from outside the unit (the grid
    warden or the regulator); any other also by the manager or the responsible person. With ``hazard``:
    only while it awaits verification."""
    if hazard is not None and hazard.status is not HazardStatus.AWAITING_VERIFICATION:
        return False
    if hazard is not None and hazard.severity is Severity.MAJOR:
        return actor.outside
    return actor.outside or actor.can_verify


def may_assign_hazard(actor: HazardActor, hazard: Hazard | None = None) -> bool:
    """Name who rectifies a hazard: the manager, the responsible person, or someone from outside; not once
    it is closed."""
    open_ = hazard is None or hazard.status is not HazardStatus.CLOSED
    return (actor.outside or actor.can_verify) and open_
