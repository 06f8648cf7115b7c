"""Who may read a tenant's audit log."""

from __future__ import annotations

from portal.core.i18n import N_
from portal.identity import access
from portal.identity.principal import ContextKind, Principal
from portal.models.tenants import MemberRole

# The unit's two answerable people and its regulator. The guard checks the role; the page still finds the
# tenant through the scope (404 outside it).
READERS = access.member(MemberRole.RESPONSIBLE, MemberRole.MANAGER) | access.cross_tenant(
    ContextKind.REGULATOR
)
ONLY_READERS = N_("Only the unit's manager, its responsible person and its regulator may read its audit log.")


def may_read_audit(me: Principal) -> bool:
    """Open a tenant's audit log."""
    return access.allows(READERS, me)
