"""What every route uses: request id + locale middleware, principal and scoped-session dependencies,
translated error pages, and the full-page-or-fragment rendering rule of htmx (DESIGN section 11)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar import Request, Response
from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.middleware import ASGIMiddleware
from litestar.response import Template
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import actor as audit
from portal.core import api_contract, i18n, problems
from portal.core.errors import NotAllowed
from portal.core.route_access import access_of

access_log = structlog.get_logger("portal.access")

# Route parameter type: the request's session (bound to the principal's scope by portal.identity).
DB = NamedDependency[AsyncSession]


class RequestContextMiddleware(ASGIMiddleware):
    """Request id (kept from ``X-Request-ID`` or made), the page language, and one log line per request."""

    scopes = ("http",)  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        query = dict(
            p.split("=", 1) for p in scope.get("query_string", b"").decode("latin-1").split("&") if "=" in p
        )
        cookies = _cookies(headers.get("cookie", ""))
        session = scope.get("session") or {}
        locale = i18n.negotiate(
            explicit=query.get("lang"),
            cookie=cookies.get("lang"),
            user_pref=session.get("locale") if isinstance(session, dict) else None,
            accept_language=headers.get("accept-language"),
        )
        i18n.set_locale(locale)
        scope.setdefault("state", {})["locale"] = locale
        scope["state"]["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        client = scope.get("client")
        ip = client[0] if client else ""
        # Until a principal is known, whatever this request records is attributed to an anonymous visitor.
        audit.set_actor(audit.Actor(label="anonymous", ip=ip, request_id=request_id))
        started = time.perf_counter()
        status = 500

        started_response = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await next_app(scope, receive, send_wrapper)
        except Exception as exc:
            # Refused before the handler (CSRF 403, rate limit 429...): the exception handlers outside this
            # middleware answer it, so the log says what they will answer, not 500.
            if not started_response:
                status = exc.status_code if isinstance(exc, HTTPException) else 500
            raise
        finally:
            access_log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def _cookies(raw: str) -> dict[str, str]:
    out = {}
    for part in raw.split(";"):
        if "=" in part:
            k, v = part.strip().split("=", 1)
            out[k] = v
    return out


# -- redirects ----------------------------------------------------------------------------------------

NEXT_MAX = 512
# Backslashes, controls and spaces: a browser reads "/\\evil.example" as "//evil.example".
_UNSAFE_NEXT = re.compile(r"[\\\x00-\x20\x7f]")


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of this site, else ``/``: the only redirect targets that come from a
    request (``?next=``, a form, a JSON body). No scheme, no ``//`` or backslash host, no control
    characters, at most ``NEXT_MAX`` characters: an open redirect after sign-in is a phishing tool."""
    if (
        not target
        or len(target) > NEXT_MAX
        or not target.startswith("/")
        or target.startswith("//")
        or _UNSAFE_NEXT.search(target)
    ):
        return "/"
    return target


# -- rendering ---------------------------------------------------------------------------------------


def page(
    request: Request, template: str, *, fragment: str | None = None, status_code: int = 200, **context: Any
) -> Template:
    """One URL, two answers: the full page, or ``fragment`` when htmx asks for a partial swap."""
    htmx = getattr(request, "htmx", None)
    name = fragment if (fragment and htmx and not htmx.boosted) else template
    return Template(template_name=name, context=context, status_code=status_code)


# -- errors -------------------------------------------------------------------------------------------


def error_response(request: Request, exc: Exception) -> Response[Any]:
    """Every error, one way: problem details for the JSON API and scripts (``core.problems``), else the
    translated error page. Only translated text reaches the caller: no stack traces, no oracles."""
    code = None
    if isinstance(exc, NotAllowed):  # a policy refused: its own translated reason ("only the manager...")
        status, detail = 403, exc.message
    elif isinstance(exc, problems.Problem):  # a rule of ours refused, with its translated reason
        status, detail, code = exc.status_code, exc.detail, exc.code
    else:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = problems.title_for(status)
    if status >= 500:
        structlog.get_logger("portal.error").error("unhandled", path=request.url.path, exc_info=exc)
    # Headers the exception carries go out with the answer: Allow on a 405, RateLimit-* on a 429.
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    if status == 401 and _takes_api_keys(request):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="portal"')  # RFC 9110: how to authenticate
    if api_contract.wants_json(request):
        errors = problems.field_errors(exc) if isinstance(exc, ValidationException) else None
        if errors:
            detail = problems.invalid_input()
        return problems.problem_response(
            request, status, detail=detail, code=code, errors=errors, headers=headers
        )
    return Template(
        template_name="error.html",
        context={"status": status, "message": detail},
        status_code=status,
        headers=headers or None,
    )


def _takes_api_keys(request: Request) -> bool:
    handler = request.scope.get("route_handler")
    rule = access_of(handler) if handler is not None else None
    return rule is not None and rule.by_api_key


EXCEPTION_HANDLERS: dict[Any, Any] = {
    NotAllowed: error_response,  # a service's policy refused the action: 403 with the policy's reason
    HTTPException: error_response,
    NotFoundException: error_response,
    PermissionDeniedException: error_response,
    Exception: error_response,
}
