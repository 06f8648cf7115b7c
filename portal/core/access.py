"""Who may call which route. Every route handler declares it; a route that declares nothing answers 403.

Declare it with ``opt`` on the handler, or on its Controller / Router (handlers inherit it and may
override it)::

    from portal.core import access
    from portal.core.principal import ContextKind
    from portal.models.tenants import MemberRole

    @get("/signin", opt=access.public())                      # anyone, signed in or not
    @get("/account/sessions", opt=access.signed_in())         # any signed-in person, whatever the role
    @post("/t/{tenant_id:uuid}/invitations", opt=access.member(MemberRole.RESPONSIBLE, MemberRole.MANAGER))
    @get("/t/{tenant_id:uuid}", opt=access.member() | access.cross_tenant(ContextKind.REGULATOR))

    @get("/api/v1/risk/{tenant_id:uuid}", opt=access.api_key())  # the handler checks the bearer key

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
    Bearer-token API routes (under ``/api/``, exempt from CSRF): no session is needed, the handler or its
    dependency checks the API key itself (and answers 401 without a good one). Not rate-limited as public.

What the guard (:func:`guard`, installed on the app) answers:

* no declaration: **403**, and an error in the log. ``tests/auth/test_access.py`` walks every route of
  the app and fails on any handler without one, so a forgotten declaration never reaches production.
* signed out (or a session that ended) on anything but ``public`` / ``api_key``: **401** (pages redirect
  to /signin, with a notice when a session ended).
* signed in, but the active role is not among the declared ones: **403** with a translated message.

The guard looks at the role only, never at which object is asked for: objects are still found through
the tenancy scope, so another tenant's object stays a **404** (DESIGN section 6). Routes keep using the
scope for that, and may check finer rules (e.g. "only the responsible person signs") themselves.
Litestar's own OPTIONS answers (204 + ``Allow``, no code of ours) count as public.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from portal.core.i18n import _
from portal.core.principal import ContextKind, Principal
from portal.models.tenants import MemberRole

__all__ = [
    "OPT_KEY",
    "Access",
    "access_of",
    "admin",
    "api_key",
    "cross_tenant",
    "guard",
    "insurer",
    "member",
    "public",
    "signed_in",
]

log = structlog.get_logger("portal.access")

OPT_KEY = "access"
CROSS_TENANT = (ContextKind.WARDEN, ContextKind.COMMITTEE, ContextKind.REGULATOR, ContextKind.INSURER)


@dataclass(frozen=True)
class Access(Mapping[str, Any]):
    """One route's declaration. It is also the ``opt`` mapping ``{"access": self}``, so it can be passed
    as ``opt=`` directly or unpacked into a larger ``opt`` dict."""

    is_public: bool = False
    any_signed_in: bool = False
    member_roles: frozenset[str] = frozenset()
    contexts: frozenset[ContextKind] = frozenset()
    throttle: bool = True
    by_api_key: bool = False

    def __or__(self, other: Access) -> Access:
        return Access(
            is_public=self.is_public or other.is_public,
            any_signed_in=self.any_signed_in or other.any_signed_in,
            member_roles=self.member_roles | other.member_roles,
            contexts=self.contexts | other.contexts,
            throttle=self.throttle and other.throttle,
            by_api_key=self.by_api_key or other.by_api_key,
        )

    # Mapping: ``opt=access.member()`` is ``opt={"access": access.member()}``.
    def __getitem__(self, key: str) -> Any:
        if key != OPT_KEY:
            raise KeyError(key)
        return self

    def __iter__(self) -> Iterator[str]:
        return iter((OPT_KEY,))

    def __len__(self) -> int:
        return 1

    @property
    def without_session(self) -> bool:
        """Answered without a signed-in session (public, or authenticated by an API key)."""
        return self.is_public or self.by_api_key

    def allows(self, principal: Principal | None) -> bool:
        if self.without_session:
            return True
        if principal is None:
            return False
        if self.any_signed_in:
            return True
        context = principal.context
        if context is None:
            return False
        if context.kind is ContextKind.MEMBER:
            return bool(self.member_roles & principal.roles)
        return context.kind in self.contexts

    def describe(self) -> str:
        parts = []
        if self.is_public:
            parts.append("public" if self.throttle else "public(throttle=False)")
        if self.by_api_key:
            parts.append("api_key")
        if self.any_signed_in:
            parts.append("signed_in")
        if self.member_roles:
            parts.append(f"member({','.join(sorted(self.member_roles))})")
        if self.contexts:
            parts.append(f"roles({','.join(sorted(k.value for k in self.contexts))})")
        return " | ".join(parts) or "nobody"


def public(*, throttle: bool = True) -> Access:
    """Anyone, signed in or not. ``throttle=False`` for static assets (never rate-limited)."""
    return Access(is_public=True, throttle=throttle)


def api_key() -> Access:
    """A bearer-token API route: the handler (or its dependency) authenticates the API key itself."""
    return Access(by_api_key=True, throttle=False)


def signed_in() -> Access:
    """Any signed-in person, whatever their active role (account pages, the role switcher)."""
    return Access(any_signed_in=True)


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


def access_of(handler: BaseRouteHandler) -> Access | None:
    """The handler's declaration (its own, else its controller's or router's), or ``None``."""
    rule = (handler.opt or {}).get(OPT_KEY)
    if isinstance(rule, Access):
        return rule
    if _generated_options(handler):
        return _OPTIONS
    return None


_OPTIONS = public()


def _generated_options(handler: BaseRouteHandler) -> bool:
    # Litestar answers OPTIONS on every path by itself (204 + the Allow header): no code of ours runs.
    methods = getattr(handler, "http_methods", None)
    return methods == {"OPTIONS"} and getattr(handler.fn, "__module__", "") == "litestar.routes.http"


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app-level guard: fail closed without a declaration, else check the active role."""
    rule = access_of(handler)
    if rule is None:
        log.error(
            "route without an access declaration", path=connection.url.path, handler=handler.handler_name
        )
        raise PermissionDeniedException(detail=_("You are not allowed to do this."))
    if rule.without_session:
        return
    from portal.core.web import principal_of

    principal = await principal_of(connection)
    if principal is None:
        raise NotAuthorizedException(detail=_("Please sign in."))
    if not rule.allows(principal):
        raise PermissionDeniedException(detail=_("You are not allowed to do this."))
