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
