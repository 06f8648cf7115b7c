"""Security headers on every answer of the portal: pages, fragments, JSON, files, errors and redirects.

* ``Content-Security-Policy``: scripts, styles, fonts and frames only from the portal itself, no inline
  script or style anywhere (templates keep theirs in ``portal/frontend/static``), no plugins, no
  ``<base>``, and no other site may frame a page (clickjacking). Pictures and uploads may also reach the
  object store: evidence is shown through short-lived signed URLs there and uploaded to it directly by
  the browser (``uploader.js``'s presigned POST is an XMLHttpRequest, so ``connect-src``; no ``<form>``
  posts there). A style block the server draws itself (the dashboard's chart) is allowed by its hash.
* ``X-Content-Type-Options: nosniff``: a file is used only as what its type says (an uploaded document
  is never run as a script).
* ``Referrer-Policy: same-origin``: page addresses carry ids and one-time invitation tokens; no other
  site needs to know where a visitor came from, the object store included.
* ``Strict-Transport-Security`` when people reach the portal over https (the same rule as ``Secure``
  cookies: production, or an https public URL; browsers ignore it on plain http).
* ``Cache-Control: no-store`` on every answer to a request with credentials (a signed-in session or an
  ``Authorization`` header), unless the route chose its own: nothing private stays in a shared or back
  button cache. Static files carry no session, so they keep their own caching.

A route may send its own ``Content-Security-Policy``; it is kept. The headers are added by a
``before_send`` hook, not a route middleware: Litestar's route middleware never sees the 404 of an
unknown path or an error raised before routing, and those pages need the headers too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from portal.config import Settings

HSTS = "max-age=31536000"  # a year; sub-domains are left to whoever runs them
REFERRER_POLICY = "same-origin"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def storage_origins(settings: Settings) -> list[str]:
    """Where the browser fetches and uploads evidence: the file backend's signed URLs are absolute at the
    portal's public address (which may differ from the address a page was opened at); S3's are at its
    endpoint (path-style), which boto3 resolves from the region when no endpoint is configured (AWS)."""
    if settings.storage_url.startswith("s3://"):
        if settings.s3_endpoint_url:
            return [origin(settings.s3_endpoint_url)]
        import boto3

        client = boto3.session.Session(region_name=settings.s3_region).client("s3")
        return [origin(client.meta.endpoint_url)]
    return [origin(settings.base_url)]


def content_security_policy(*, storage: Sequence[str] = (), style_hashes: Iterable[str] = ()) -> str:
    """The site's policy. ``storage``: origins of the object store; ``style_hashes``: ``sha256-…`` of
    style blocks the server draws itself."""
    hashes = [f"'{h}'" for h in style_hashes]
    directives = [
        ("default-src", ["'self'"]),
        ("script-src", ["'self'"]),
        ("style-src", ["'self'", *hashes]),
        ("img-src", ["'self'", "data:", "blob:", *storage]),
        ("connect-src", ["'self'", *storage]),
        ("form-action", ["'self'"]),
        ("base-uri", ["'none'"]),
        ("object-src", ["'none'"]),
        ("frame-ancestors", ["'none'"]),
    ]
    return "; ".join(f"{name} {' '.join(dict.fromkeys(sources))}" for name, sources in directives)


@dataclass(frozen=True)
class SecurityHeaders:
    """The ``before_send`` hook; ``signed_in`` tells whether a request's session holds a person."""

    csp: str
    https: bool
    signed_in: Callable[[Scope], bool]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        https: bool,
        signed_in: Callable[[Scope], bool],
        style_hashes: Iterable[str] = (),
    ) -> SecurityHeaders:
        csp = content_security_policy(storage=storage_origins(settings), style_hashes=style_hashes)
        return cls(csp=csp, https=https, signed_in=signed_in)

    def private(self, scope: Scope) -> bool:
        """The request carries credentials: a signed-in session or an API key."""
        if self.signed_in(scope):
            return True
        return any(name == b"authorization" for name, _value in scope.get("headers", ()))

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers.setdefault("Content-Security-Policy", self.csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", REFERRER_POLICY)
        if self.https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if "cache-control" not in headers and self.private(scope):
            headers["Cache-Control"] = "no-store"


__all__ = ["SecurityHeaders", "content_security_policy", "origin", "storage_origins"]
