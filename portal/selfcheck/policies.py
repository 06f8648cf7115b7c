"""Who may do what in the tenant's cycle."""

from __future__ import annotations

from portal.identity import access
from portal.identity.principal import ContextKind

# The cycle's pages: the tenant's members, and from outside the grid's people and the regulator (insurers
# never see self-checks or hazards, only the risk status they were granted).
CYCLE_PAGES = access.member() | access.cross_tenant(
    ContextKind.WARDEN, ContextKind.COMMITTEE, ContextKind.REGULATOR
)
