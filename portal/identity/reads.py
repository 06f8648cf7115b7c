"""Cross-tenant reads (DESIGN section 6): whoever reads a tenant's data from outside it — a regulator, a grid
warden, a residents' committee, an insurer — leaves an entry in that tenant's audit chain, in the same
transaction as the read. A member reading its own tenant is the tenant looking at itself: not logged.

Who, from where and in which request come from the audit actor the web layer sets per request.

One mechanism records the reads of single tenants, so that a new page cannot forget it: the app's
``before_request`` / ``after_request`` hooks (:func:`remember_request`, :func:`record_page_read`). Every
successful GET of a route with a ``tenant_id`` in its path, by someone from outside that tenant, leaves one
``tenant.read`` entry (or the action the route names with ``opt={"reads": ...}``), in the request's own
transaction; a page adds what it wants said about the read with :func:`note`. Pages that list several
tenants call :func:`record_cross_tenant_read` themselves (a list is not one tenant's page).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.identity.dependencies import PRINCIPAL_KEY, request_db_session
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


# -- the page-read hooks -------------------------------------------------------------------------------

READS_OPT = "reads"  # a route's ``opt`` key: the action its reads are recorded as
_DETAIL_KEY = "portal.read_detail"
_request: ContextVar[Request[Any, Any, Any] | None] = ContextVar("portal_read_request", default=None)


def note(request: Request[Any, Any, Any], **detail: Any) -> None:
    """Add ``detail`` to the read this request will leave (e.g. which report left the portal)."""
    request.scope.setdefault("state", {}).setdefault(_DETAIL_KEY, {}).update(detail)


async def remember_request(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: the after-request hook below finishes this request (same task)."""
    _request.set(request)


async def record_page_read(response: Response[Any]) -> Response[Any]:
    """``after_request`` hook: a successful GET of one tenant's page or object from outside the tenant
    leaves a read in that tenant's chain (errors and redirects showed nothing: no read)."""
    request = _request.get()
    if request is None or request.method not in ("GET", "HEAD"):
        return response
    # A Response built without a status takes the handler's (200 for a GET) when it is sent.
    if (response.status_code or request.route_handler.status_code) != 200:
        return response
    tenant_id = request.path_params.get("tenant_id")
    if not isinstance(tenant_id, uuid.UUID):
        return response
    state = request.scope.get("state", {})
    principal = state.get(PRINCIPAL_KEY)
    if principal is None or principal.context is None or principal.context.kind is ContextKind.MEMBER:
        return response  # signed out (a public page) or the tenant itself
    action = (request.route_handler.opt or {}).get(READS_OPT, TENANT_READ)
    via = "api" if request.url.path.startswith("/api/") else "web"
    detail = {"via": via, **state.get(_DETAIL_KEY, {})}
    await record_cross_tenant_read(request_db_session(request), principal, [tenant_id], action, detail=detail)
    return response


__all__ = [
    "AUDIT_READ",
    "READS_OPT",
    "TENANT_LIST_READ",
    "TENANT_READ",
    "note",
    "record_cross_tenant_read",
    "record_page_read",
    "remember_request",
]
