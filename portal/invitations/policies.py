"""Who may invite people (and recover accounts): one rule for the pages that offer it and the routes."""

from __future__ import annotations

from portal.identity import access
from portal.identity.principal import ContextKind, Principal
from portal.models.tenants import MemberRole

# The roles that invite; ``invitations.side_of`` re-checks the role and finds the tenant or committee.
INVITERS = (
    access.member(MemberRole.RESPONSIBLE, MemberRole.MANAGER)
    | access.cross_tenant(ContextKind.COMMITTEE)
    | access.admin()
)


def may_invite(me: Principal) -> bool:
    """Open the invitations page and create invitations."""
    return access.allows(INVITERS, me)
