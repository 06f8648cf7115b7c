"""Cross-tenant reads (DESIGN section 6): whoever reads a tenant's data from outside it — a regulator, a grid
warden, a residents' committee, an insurer — leaves an entry in that tenant's audit chain, in the same
transaction as the read. A member reading its own tenant is the tenant looking at itself: not logged.

Who, from where and in which request come from the audit actor the web layer sets per request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.identity.principal import ContextKind, Principal

TENANT_READ = "tenant.read"
TENANT_LIST_READ = "tenant.list_read"
AUDIT_READ = "audit.read"


async def record_cross_tenant_read(
    session: AsyncSession,
    principal: Principal | None,
    tenant_ids: Iterable[uuid.UUID],
    action: str,
    *,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append ``action`` to the chain of every tenant read that is not the reader's own; returns how many.

    Chains are appended in a fixed order (by id) so that two readers of overlapping lists lock the chain
    heads in the same order and never deadlock each other.
    """
    if principal is None or principal.context is None:
        return 0  # nobody signed in, or no role: the scope showed no tenant data
    context = principal.context
    ids = set(tenant_ids)
    if context.kind is ContextKind.MEMBER:
        ids.discard(uuid.UUID(context.key))
    if not ids:
        return 0
    ordered = sorted(ids, key=str)
    await audit.record_reads(session, ordered, action, detail={"as": context.kind.value, **(detail or {})})
    return len(ordered)


__all__ = ["AUDIT_READ", "TENANT_LIST_READ", "TENANT_READ", "record_cross_tenant_read"]
