"""The declaration every route carries: who may call it. Data only: which roles, whether it is public or
reached by an API key, whether signed-out visits are rate-limited. The guard that compares it with the
signed-in person, and the declarations that name roles, live in :mod:`portal.identity.access`; the
plumbing routes of core (storage URLs, static files) declare themselves ``public`` here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from litestar.handlers.base import BaseRouteHandler

__all__ = ["OPT_KEY", "Access", "access_of", "api_key", "public", "signed_in"]

OPT_KEY = "access"


@dataclass(frozen=True)
class Access(Mapping[str, Any]):
    """One route's declaration. It is also the ``opt`` mapping ``{"access": self}``, so it can be passed
    as ``opt=`` directly or unpacked into a larger ``opt`` dict."""

    is_public: bool = False
    any_signed_in: bool = False
    member_roles: frozenset[str] = frozenset()
    contexts: frozenset[str] = frozenset()
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
            parts.append(f"roles({','.join(sorted(self.contexts))})")
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


def access_of(handler: BaseRouteHandler) -> Access | None:
    """The handler's declaration (its own, else its controller's or router's), or ``None``."""
    rule = (handler.opt or {}).get(OPT_KEY)
    declared = rule if isinstance(rule, Access) else None
    # Litestar's OPTIONS handler inherits its controller's opt, but it runs no code of ours: public.
    if _generated_options(handler):
        return _OPTIONS if declared is None or declared.throttle else public(throttle=False)
    return declared


_OPTIONS = public()


def _generated_options(handler: BaseRouteHandler) -> bool:
    # Litestar answers OPTIONS on every path by itself (204 + the Allow header): no code of ours runs.
    methods = getattr(handler, "http_methods", None)
    return methods == {"OPTIONS"} and getattr(handler.fn, "__module__", "") == "litestar.routes.http"
