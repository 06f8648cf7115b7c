"""Who may do what to a tenant's own record: one named rule per action, enforced by the services and asked
by the pages before they show the link or the button."""

from __future__ import annotations

from collections.abc import Collection

from portal.core.i18n import N_
from portal.identity import access
from portal.identity.principal import ContextKind, Principal
from portal.models.tenants import MemberRole

# The two people who answer for a unit's fire safety (消防安全责任人, 消防安全管理人).
ANSWERABLE = frozenset({MemberRole.RESPONSIBLE, MemberRole.MANAGER})

# The tenant's own page (its dashboard and roster, with names): its members and, from outside, the grid's
# people and the regulator; not insurers, who read risk status through the API.
TENANT_PAGE = access.member() | access.cross_tenant(
    ContextKind.WARDEN, ContextKind.COMMITTEE, ContextKind.REGULATOR
)

ONLY_ANSWERABLE_EDIT_BOARD = N_("Only the manager or the responsible person changes the public board.")


def may_manage_roster(roles: Collection[MemberRole]) -> bool:
    """Change a member's role or remove a member (the roster's own rules then decide which changes)."""
    return bool(ANSWERABLE & set(roles))


def may_edit_public_board(roles: Collection[MemberRole]) -> bool:
    """Publish or withdraw the contact phone on the tenant's public board."""
    return bool(ANSWERABLE & set(roles))


def may_open_tenant_page(me: Principal) -> bool:
    """Open a tenant's own page (the scope then decides which tenants)."""
    return access.allows(TENANT_PAGE, me)


# Who stands above whom in a unit: the responsible person (消防安全责任人) answers for it, the manager
# (消防安全管理人) runs it, staff work in it.
RANK = {MemberRole.STAFF: 0, MemberRole.MANAGER: 1, MemberRole.RESPONSIBLE: 2}


def _top(roles: Collection[MemberRole]) -> int:
    return max((RANK[r] for r in roles), default=-1)


def may_grant_role(
    actor_roles: Collection[MemberRole], role: MemberRole, *, unit_has_responsible: bool
) -> bool:
    """Give ``role`` to someone, on the roster or by invitation: a manager or the responsible person, and
    nobody a role above their own. The one exception: a manager names the first responsible person of a
    unit that has none (that person then takes it; the manager cannot accept it for themselves)."""
    if not may_manage_roster(actor_roles):
        return False
    if RANK[role] <= _top(actor_roles):
        return True
    return role is MemberRole.RESPONSIBLE and not unit_has_responsible


def may_recover(actor_roles: Collection[MemberRole], target_roles: Collection[MemberRole]) -> bool:
    """Make a recovery invitation (a new passkey) for someone's account: a manager or the responsible
    person, for someone whose roles are none above their own (taking over a superior's account is
    granting oneself their role)."""
    return may_manage_roster(actor_roles) and _top(target_roles) <= _top(actor_roles)
