"""Errors of the JSON API as RFC 9457 problem details (``application/problem+json``).

Every JSON error has the same members: ``type`` (``about:blank`` for a plain HTTP status, else
``urn:fire-portal:problem:<code>``), ``title`` (what the status means, in the person's language),
``status``, ``detail`` (what went wrong this time, in the person's language) and ``instance`` (the path
asked for), plus ``code`` when a rule of ours refused (the machine-readable reason the browser's scripts
and API clients branch on) and ``errors`` (one entry per field) when the request did not match the
operation's parameters or body. Litestar's :class:`ProblemDetailsException` renders the body.

HTML pages keep their translated error pages; ``core.api_contract.wants_json`` decides which answer a
request gets.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import ProblemDetailsException
from msgspec import UNSET, Meta, UnsetType

from portal.core import i18n
from portal.core.i18n import N_, _

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:fire-portal:problem:"

# What each status means; the same sentence heads the HTML error page.
TITLES = {
    400: N_("The request could not be understood."),
    401: N_("Please sign in."),
    403: N_("You are not allowed to do this."),
    404: N_("This page does not exist, or it is not yours to see."),
    405: N_("This page does not accept that kind of request."),
    409: N_("This cannot be done yet. Please try again in a moment."),
    410: N_("This is no longer available."),
    413: N_("The upload is too large."),
    422: N_("This was refused. Nothing was changed."),
    429: N_("Too many requests. Please wait a moment and try again."),
    500: N_("Something went wrong on our side. It has been logged; please try again."),
    503: N_("A service the portal needs is not answering. Please try again later."),
}


INVALID_INPUT = N_("Some values are missing or not valid: each one is listed under errors.")


def invalid_input() -> str:
    return _(INVALID_INPUT)


def title_for(status: int) -> str:
    """The translated title of ``status`` (a status without its own: the 4xx or 5xx one)."""
    return _(TITLES.get(status) or (TITLES[500] if status >= 500 else TITLES[400]))


class Problem(ProblemDetailsException):
    """A refusal to tell the caller: ``detail`` is already translated, ``code`` names the rule that
    refused (``quota``, ``processing_failed``…). Raise it from a route; the app's exception handler
    answers it as problem details (or, on a page, as the error page with ``detail``)."""

    def __init__(
        self, status_code: int, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers, type_=type_of(code))
        self.code = code


def type_of(code: str | None) -> str:
    return "about:blank" if code is None else f"{TYPE_PREFIX}{code}"


# -- the declared shape (the OpenAPI document's ``ProblemDetail`` schema) -------------------------------


class FieldProblem(msgspec.Struct):
    field: Annotated[str, Meta(description="The parameter or body member, dotted (`limit`, `owner_id`)")]
    source: Annotated[str, Meta(description="Where it was: `query`, `path`, `header`, `cookie` or `body`")]
    message: Annotated[str, Meta(description="What is wrong with it, in the caller's language")]


class ProblemDetail(msgspec.Struct):
    """RFC 9457 problem details."""

    type: Annotated[
        str, Meta(description="`about:blank`, or `urn:fire-portal:problem:<code>` for a rule of ours")
    ]
    title: Annotated[str, Meta(description="What the status means, in the caller's language")]
    status: int
    detail: Annotated[str, Meta(description="What went wrong this time, in the caller's language")]
    instance: Annotated[str, Meta(description="The path that was asked for")]
    code: Annotated[
        str | UnsetType, Meta(description="When a rule of ours refused: its machine-readable name (`quota`…)")
    ] = UNSET
    errors: Annotated[
        list[FieldProblem] | UnsetType, Meta(description="On a 400: one entry per parameter or body member")
    ] = UNSET


def problem_responses(descriptions: dict[int, str]) -> dict[int, ResponseSpec]:
    """``responses=`` of a route handler: each status answered with problem details, described."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetail,
            media_type=PROBLEM_JSON,
            description=description,
            generate_examples=False,
        )
        for status, description in descriptions.items()
    }


# -- answering ------------------------------------------------------------------------------------------


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    *,
    detail: str,
    code: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    extra: dict[str, Any] = {}
    if code is not None:
        extra["code"] = code
    if errors is not None:
        extra["errors"] = errors
    problem = ProblemDetailsException(
        status_code=status,
        detail=detail,
        headers={**(headers or {}), "Content-Language": i18n.html_lang(i18n.current_locale())},
        extra=extra or None,
        type_=type_of(code),
        title=title_for(status),
        instance=_asked_path(request),
    )
    return problem.to_response(request)


def _asked_path(request: Request[Any, Any, Any]) -> str:
    """The path as asked (percent-encoded: a URI reference), before routing trims a trailing slash. Some
    servers put the query in ``raw_path`` too; it is not part of the path."""
    raw = request.scope.get("raw_path") or b""
    return raw.decode("latin-1").split("?", 1)[0] or request.url.path


# -- what was wrong with each field ---------------------------------------------------------------------

# The validators (msgspec for parameters, pydantic for bodies) explain in English; each explanation is
# read for its kind and said again in the caller's language. First match wins: a length before a bound.
_FIELD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"missing|required", re.I), N_("This is required.")),
    (
        re.compile(r"length <= (\d+)|at most (\d+) character", re.I),
        N_("This is longer than %(limit)s characters."),
    ),
    (
        re.compile(r"length >= (\d+)|at least (\d+) character", re.I),
        N_("This is shorter than %(limit)s characters."),
    ),
    (
        re.compile(r">= ?(-?[\d.]+)|greater than or equal to (-?[\d.]+)", re.I),
        N_("This must be at least %(limit)s."),
    ),
    (
        re.compile(r"<= ?(-?[\d.]+)|less than or equal to (-?[\d.]+)", re.I),
        N_("This must be at most %(limit)s."),
    ),
    (re.compile(r"uuid", re.I), N_("This must be a UUID.")),
    (re.compile(r"enum|Input should be '", re.I), N_("This must be one of the values the API lists.")),
    (re.compile(r"`int`|valid integer", re.I), N_("This must be a whole number.")),
)
_FIELD_OTHERWISE = N_("This value is not valid here.")


def field_errors(exc: ValidationException) -> list[dict[str, str]]:
    """One translated entry per field a :class:`ValidationException` names (its ``extra``)."""
    if not isinstance(exc.extra, list):
        return []  # e.g. a body that is not JSON at all: nothing to say per field
    return [
        {
            "field": str(item.get("key") or ""),
            "source": str(getattr(item.get("source"), "value", item.get("source")) or "body"),
            "message": _field_message(str(item.get("message") or "")),
        }
        for item in exc.extra
        if isinstance(item, dict)
    ]


def _field_message(explanation: str) -> str:
    for pattern, message in _FIELD_RULES:
        if match := pattern.search(explanation):
            limit = next((g for g in match.groups() if g is not None), None)
            return _(message, limit=limit) if limit is not None else _(message)
    return _(_FIELD_OTHERWISE)
