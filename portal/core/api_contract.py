"""The JSON API's contract: which requests it answers, and what its OpenAPI document
(``/api/docs/openapi.json``) says about each operation beyond its success — how a caller authenticates,
and which problem details (``core.problems``) it may answer. Both are derived from the route's access
declaration (``core.route_access``) and its signature, so the document cannot drift from what the guard,
the CSRF middleware and the validators do:

* ``security``: a route for people asks for the ``session`` cookie (plus the CSRF cookie and header on
  a method the CSRF middleware checks); a route declared ``api_key()`` for the insurer's ``apiKey``
  (``Authorization: Bearer fsk_…``); both are alternatives where both are declared; public routes none.
* responses: 401 and 403 unless public; 404 when the path names an object; 400 (with ``errors``) when
  the operation takes parameters or a body, 413 when it takes a body; 429 on public routes that
  signed-out visitors are rate-limited on. A handler adds the statuses its own rules answer
  (``responses=problem_responses(...)``), and those win over the derived ones.

Any method a path does not declare answers 405 with ``Allow`` (Litestar's router): the document says it
once, in its description, not per operation.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.config.app import AppConfig
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from portal.core.problems import PROBLEM_JSON, problem_responses
from portal.core.route_access import Access, access_of

SESSION, CSRF_COOKIE, CSRF_HEADER, API_KEY = "session", "csrfCookie", "csrfHeader", "apiKey"
# Parameters Litestar fills from the connection itself; every other one comes from the request.
_FROM_CONNECTION = frozenset({"request", "state", "scope", "headers", "cookies", "query", "body"})
_PATH_PARAMETER = re.compile(r"\\\{[^}]*\\\}")

DERIVED = {
    400: "The parameters or the body do not match this operation; `errors` lists each field",
    401: "No session, or the API key is unknown, expired or revoked",
    403: "The caller's role may not do this (or the CSRF cookie and header do not match)",
    404: "No such object in the caller's scope (another tenant's is the same 404)",
    413: "The body is larger than this operation accepts",
    429: "Too many requests from this address; the `RateLimit-*` headers say when to try again",
}

DESCRIPTION = """\
The portal's JSON API. People's browsers call it with their session (and, on a POST, the CSRF cookie
and header); insurers' systems with an API key (`Authorization: Bearer fsk_…`) on the operations that
take one.

Every error is an RFC 9457 problem detail (`application/problem+json`): `type`, `title` and `detail` in
the caller's language (`Accept-Language`; Chinese by default, or English: the answer's
`Content-Language` says which), `status`, `instance`, plus `code` when a rule of ours refused and
`errors` (field, source, message) when the request did not match the operation. A method a path does
not list answers 405 with `Allow`.
"""


class ApiContract(InitPlugin, ReceiveRoutePlugin):
    """Declares the security schemes, fills each documented operation's ``security`` and error
    responses from its access declaration, and knows the documented paths (:func:`wants_json`)."""

    def __init__(self, *, session_cookie: str) -> None:
        self.session_cookie = session_cookie
        self._csrf_exempt: re.Pattern[str] | None = None
        self._csrf_safe: frozenset[str] = frozenset()
        self._paths: list[str] = []
        self._documented: re.Pattern[str] | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        csrf = app_config.csrf_config
        cookie = header = None
        if csrf is not None:
            self._csrf_exempt = re.compile("|".join(csrf.exclude)) if csrf.exclude else None
            self._csrf_safe = frozenset(csrf.safe_methods)
            cookie, header = csrf.cookie_name, csrf.header_name
        openapi = app_config.openapi_config
        if openapi is not None:
            schemes = self.security_schemes(cookie, header)
            existing = openapi.components if isinstance(openapi.components, list) else [openapi.components]
            openapi.components = [*existing, Components(security_schemes=schemes)]
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            rule = access_of(handler)
            if rule is None or not handler.resolve_include_in_schema():
                continue  # undeclared: the guard refuses it, and tests/identity/test_access.py fails
            if handler.security is None:
                handler.security = self.security_for(rule, handler, route.path)
            derived = problem_responses({s: DERIVED[s] for s in statuses_for(rule, handler, route)})
            handler.responses = {**derived, **(handler.responses or {})}
            self._paths.append(_PATH_PARAMETER.sub("[^/]+", re.escape(route.path)))
            self._documented = None

    def documents(self, path: str) -> bool:
        """Is ``path`` one of a documented operation's, whatever its parameters (even malformed ones)?"""
        if self._documented is None:
            self._documented = re.compile("|".join(f"(?:{p})" for p in self._paths) or "(?!)")
        return self._documented.fullmatch(path.rstrip("/") or "/") is not None

    def security_for(self, rule: Access, handler: HTTPRouteHandler, path: str) -> list[dict[str, list[str]]]:
        """The alternatives a caller may authenticate with (none: public)."""
        if rule.is_public:
            return []
        alternatives: list[dict[str, list[str]]] = []
        if rule.any_signed_in or rule.member_roles or rule.contexts:
            person: dict[str, list[str]] = {SESSION: []}
            if self._csrf_checked(handler, path):
                person |= {CSRF_COOKIE: [], CSRF_HEADER: []}
            alternatives.append(person)
        if rule.by_api_key:
            alternatives.append({API_KEY: []})
        return alternatives

    def _csrf_checked(self, handler: HTTPRouteHandler, path: str) -> bool:
        if handler.http_methods <= self._csrf_safe or (handler.opt or {}).get("exclude_from_csrf"):
            return False
        return not (self._csrf_exempt and self._csrf_exempt.findall(path))

    def security_schemes(self, csrf_cookie: str | None, csrf_header: str | None) -> dict[str, Any]:
        schemes: dict[str, Any] = {
            SESSION: SecurityScheme(
                type="apiKey",
                name=self.session_cookie,
                security_scheme_in="cookie",
                description="A person's session, started by passkey sign-in in the browser",
            ),
            API_KEY: SecurityScheme(
                type="http",
                scheme="bearer",
                bearer_format="fsk_…",
                description="An insurer's API key (`Authorization: Bearer fsk_…`), made on the insurer "
                "portal and shown once; it reads only the tenants that consented",
            ),
        }
        if csrf_cookie and csrf_header:
            schemes[CSRF_COOKIE] = SecurityScheme(
                type="apiKey",
                name=csrf_cookie,
                security_scheme_in="cookie",
                description="The CSRF cookie every page sets; with a session, a POST sends it back",
            )
            schemes[CSRF_HEADER] = SecurityScheme(
                type="apiKey",
                name=csrf_header,
                security_scheme_in="header",
                description=f"The value of the `{csrf_cookie}` cookie, repeated in this header on a POST",
            )
        return schemes


def statuses_for(rule: Access, handler: HTTPRouteHandler, route: HTTPRoute) -> list[int]:
    """The error statuses the plumbing answers for this operation (see the module docstring)."""
    params = handler.parsed_fn_signature.parameters
    dependencies = handler.resolve_dependencies()
    takes_input = any(name not in _FROM_CONNECTION and name not in dependencies for name in params)
    statuses = []
    if takes_input:
        statuses.append(400)
    if not rule.is_public:
        statuses += [401, 403]
    if route.path_parameters:
        statuses.append(404)
    if "data" in params:
        statuses.append(413)
    if rule.is_public and rule.throttle:
        statuses.append(429)
    return statuses


def wants_json(request: Request[Any, Any, Any]) -> bool:
    """Problem details rather than an HTML page: a request to the JSON API (anything under ``/api/``, or
    the path of a documented operation, even with a malformed parameter or another method), or from a
    script that asked for JSON (``Accept: application/json``)."""
    path = request.url.path
    if path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    if "application/json" in accept or PROBLEM_JSON in accept:
        return True
    try:
        contract = request.app.plugins.get(ApiContract)
    except KeyError:
        return False
    return contract.documents(path)
