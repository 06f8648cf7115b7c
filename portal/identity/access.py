"""Who may call which route. Every route handler declares it; a route that declares nothing answers 403.

Declare it with ``opt`` on the handler, or on its Controller / Router (handlers inherit it and may
override it)::

    from portal.core import access
    from portal.identity.principal import ContextKind
    from portal.models.tenants import MemberRole

    @get("/signin", opt=access.public())                      # anyone, signed in or not
    @get("/account/sessions", opt=access.signed_in())         # any signed-in person, whatever the role
    @post("/t/{tenant_id:uuid}/invitations", opt=access.member(MemberRole.RESPONSIBLE, MemberRole.MANAGER))
    @get("/t/{tenant_id:uuid}", opt=access.member() | access.cross_tenant(ContextKind.REGULATOR))

    @get("/api/v1/tenants/{tenant_id:uuid}", opt=access.member() | access.api_key())  # people or keys

    class InsurerKeyPages(Controller):
        opt = access.insurer()                                # every handler of the controller

    # with other opt keys:  opt={**access.public(), "exclude_from_csrf": True}

The kinds (combine them with ``|``):

``public(throttle=True)``
    Sign-in, invitation links, health, static files, API docs, signed storage URLs. Signed-out visitors
    are rate-limited on these (``PORTAL_RATE_LIMIT_PUBLIC_PER_MINUTE``) unless ``throttle=False``.
``signed_in()``
    Account pages and the role switcher: any signed-in person, with or without an active role.
``member(*roles)``
    The active role is a membership of a tenant with one of ``roles`` (no roles: any member role).
``cross_tenant(*kinds)``
    The active role is one of the cross-tenant ``kinds`` (default: warden, committee, regulator, insurer).
``admin()``, ``insurer()``
    The active role is platform admin, or an insurer's user.
``api_key()``
    Bearer-token API routes (under ``/api/``, exempt from CSRF): a request with ``Authorization: Bearer``
    is authenticated by its key (401 when the key is unknown, expired or revoked). An API key is not a
    person: on any route not declared ``api_key()`` a key counts for nothing, so a key alone is signed
    out there. Not rate-limited as public.

What the guard (:func:`guard`, installed on the app) answers:

* no declaration: **403**, and an error in the log. ``tests/identity/test_access.py`` walks every route of
  the app and fails on any handler without one, so a forgotten declaration never reaches production.
* signed out (or a session that ended, or only an API key where keys do not count) on anything but
  ``public``: **401** (pages redirect to /signin, with a notice when a session ended).
* signed in, but the active role is not among the declared ones: **403** with a translated message.

The guard looks at the role only, never at which object is asked for: objects are still found through
the tenancy scope, so another tenant's object stays a **404** (DESIGN section 6). Routes keep using the
scope for that, and may check finer rules (e.g. "only the responsible person signs") themselves.
Litestar's own OPTIONS answers (204 + ``Allow``, no code of ours) count as public.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from portal.core.i18n import _
from portal.core.route_access import OPT_KEY, Access, access_of, api_key, public, signed_in
from portal.identity.principal import ContextKind, Principal
from portal.models.tenants import MemberRole

__all__ = [
    "OPT_KEY",
    "Access",
    "access_of",
    "admin",
    "allows",
    "api_key",
    "cross_tenant",
    "guard",
    "insurer",
    "member",
    "public",
    "signed_in",
]

log = structlog.get_logger("portal.access")

CROSS_TENANT = (ContextKind.WARDEN, ContextKind.COMMITTEE, ContextKind.REGULATOR, ContextKind.INSURER)


def member(*roles: MemberRole) -> Access:
    """The active role is a membership with one of ``roles`` in the tenant of the scope (none: any)."""
    chosen = roles or tuple(MemberRole)
    return Access(member_roles=frozenset(r.value for r in chosen))


def cross_tenant(*kinds: ContextKind) -> Access:
    """The active role is one of the cross-tenant ``kinds`` (none: warden, committee, regulator, insurer)."""
    chosen = kinds or CROSS_TENANT
    if ContextKind.MEMBER in chosen:
        raise ValueError("members are declared with access.member(...)")
    return Access(contexts=frozenset(chosen))


def admin() -> Access:
    """The platform admin role."""
    return Access(contexts=frozenset({ContextKind.ADMIN}))


def insurer() -> Access:
    """An insurer's user (the insurer portal; the insurer's API uses API keys, not sessions)."""
    return Access(contexts=frozenset({ContextKind.INSURER}))


def allows(rule: Access, principal: Principal | None) -> bool:
    """Does ``rule`` let this person (``None``: signed out) call the route? An API key is not a person:
    it reaches only routes declared ``api_key()``."""
    if rule.is_public:
        return True
    if principal is None:
        return False
    if principal.api_key_id is not None:
        return rule.by_api_key
    if rule.any_signed_in:
        return True
    context = principal.context
    if context is None:
        return False
    if context.kind is ContextKind.MEMBER:
        return bool(rule.member_roles & principal.roles)
    return context.kind in rule.contexts


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app-level guard: fail closed without a declaration, else check the active role."""
    rule = access_of(handler)
    if rule is None:
        log.error(
            "route without an access declaration", path=connection.url.path, handler=handler.handler_name
        )
        raise PermissionDeniedException(detail=_("You are not allowed to do this."))
    if rule.is_public:
        return
    from portal.identity.dependencies import principal_of

    # On a route that takes API keys, a bearer key is authenticated by the principal dependency (401
    # when it is unknown, expired or revoked); on any other route a key counts for nothing.
    principal = await principal_of(connection)
    if principal is None:
        raise NotAuthorizedException(detail=_("Please sign in."))
    if not allows(rule, principal):
        raise PermissionDeniedException(detail=_("You are not allowed to do this."))
