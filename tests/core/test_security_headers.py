"""Security headers on every answer (portal/core/security_headers.py), over HTTP on both databases."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from litestar.testing import AsyncTestClient

import portal as portal_package
from portal.config import Settings, load_settings
from portal.core.security_headers import SecurityHeaders, content_security_policy, storage_origins
from portal.identity import sessions
from tests.fixtures.factories import World
from tests.fixtures.web import limited_client, sign_in

SITE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "img-src": "'self' data: blob: http://localhost:8000",
    "connect-src": "'self' http://localhost:8000",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}


def directives(response_policy: str) -> dict[str, str]:
    parts = (d.strip().split(" ", 1) for d in response_policy.split(";"))
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


def assert_site_headers(headers: dict[str, str] | object) -> None:
    policy = directives(headers["content-security-policy"])  # type: ignore[index]
    for name, sources in SITE_POLICY.items():
        assert policy[name] == sources, (name, policy.get(name))
    # Styles: the portal's own stylesheets and the dashboard chart's one block by its hash, nothing inline.
    assert re.fullmatch(r"'self' 'sha256-[A-Za-z0-9+/]{43}='", policy["style-src"]), policy["style-src"]
    assert "unsafe" not in headers["content-security-policy"]  # type: ignore[index]
    assert headers["x-content-type-options"] == "nosniff"  # type: ignore[index]
    assert headers["referrer-policy"] == "same-origin"  # type: ignore[index]


async def test_a_public_page_carries_every_header_and_may_be_cached(client: AsyncTestClient) -> None:
    page = await client.get("/signin")
    assert page.status_code == 200
    assert_site_headers(page.headers)
    assert "strict-transport-security" not in page.headers  # plain http in development
    assert "no-store" not in page.headers.get("cache-control", "")  # nobody signed in: nothing private
    # Answers made before any route ran (an unknown path) carry them too.
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    assert_site_headers(missing.headers)


async def test_answers_to_a_signed_in_person_are_not_stored(client: AsyncTestClient, world: World) -> None:
    signed = await sign_in(client, world.users["manager_a"].login)
    assert signed.status_code == 303 and signed.headers["cache-control"] == "no-store"  # the sign-in too
    tenant = world.tenants["a"]
    page = await client.get(f"/t/{tenant.id}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["cache-control"] == "no-store"
    assert_site_headers(page.headers)
    data = await client.get(f"/api/v1/tenants/{tenant.id}")
    assert data.status_code == 200 and data.headers["content-type"].startswith("application/json")
    assert data.headers["cache-control"] == "no-store"
    # Static files carry no session: they keep their own caching, and still the other headers.
    css = await client.get("/static/css/portal.css")
    assert css.status_code == 200
    assert "no-store" not in css.headers.get("cache-control", "")
    assert css.headers["x-content-type-options"] == "nosniff"
    vendor = await client.get("/vendor/htmx.org/dist/htmx.min.js")
    assert vendor.status_code == 200 and "no-store" not in vendor.headers.get("cache-control", "")


async def test_an_api_key_request_is_not_stored(client: AsyncTestClient) -> None:
    client.cookies.clear()
    refused = await client.get("/api/v1/tenants/", headers={"Authorization": "Bearer fsk_00000000_nope"})
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    assert_site_headers(refused.headers)


async def test_a_route_keeps_its_own_caching() -> None:
    hook = SecurityHeaders(csp="default-src 'self'", https=False, signed_in=lambda scope: True)
    own = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"cache-control", b"private, max-age=60")],
    }
    await hook(own, {"type": "http", "headers": []})  # type: ignore[arg-type]
    assert [v for k, v in own["headers"] if k == b"cache-control"] == [b"private, max-age=60"]  # type: ignore[union-attr]
    none = {"type": "http.response.start", "status": 200, "headers": []}
    await hook(none, {"type": "http", "headers": []})  # type: ignore[arg-type]
    assert (b"cache-control", b"no-store") in none["headers"]  # type: ignore[operator]


async def test_strict_transport_security_only_over_https(settings: Settings) -> None:
    async with limited_client(settings) as plain:
        assert "strict-transport-security" not in (await plain.get("/signin")).headers
    async with limited_client(settings, public_url="https://portal.example.cn") as https:
        page = await https.get("/signin")
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        policy = directives(page.headers["content-security-policy"])
        assert policy["img-src"] == "'self' data: blob: https://portal.example.cn"
    async with limited_client(settings, env="production") as production:
        assert (await production.get("/signin")).headers["strict-transport-security"] == "max-age=31536000"


def test_pictures_and_uploads_may_reach_the_object_store() -> None:
    s3 = dict(storage_url="s3://evidence", s3_access_key="k", s3_secret_key="s")
    seaweed = load_settings(**s3, s3_endpoint_url="http://127.0.0.1:8333/")
    assert storage_origins(seaweed) == ["http://127.0.0.1:8333"]
    policy = directives(content_security_policy(storage=storage_origins(seaweed)))
    assert policy["img-src"] == "'self' data: blob: http://127.0.0.1:8333"
    assert policy["connect-src"] == "'self' http://127.0.0.1:8333"
    assert policy["form-action"] == "'self'"  # the upload is an XMLHttpRequest, not a form
    # No endpoint: AWS, whose address boto3 derives from the region (China's regions have their own).
    assert storage_origins(load_settings(**s3, s3_region="cn-north-1")) == [
        "https://s3.cn-north-1.amazonaws.com.cn"
    ]
    assert storage_origins(load_settings(storage_url="file://var/x", public_url="https://p.example.cn/")) == [
        "https://p.example.cn"
    ]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "style" or any(name == "style" for name, _v in attrs):
            self.inline_styles += 1


async def test_the_api_documentation_runs_under_the_site_policy(client: AsyncTestClient) -> None:
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert_site_headers(docs.headers)
    found = _Scripts()
    found.feed(docs.text)
    assert found.scripts and all(s.get("src", "").startswith(("/vendor/", "/static/")) for s in found.scripts)
    assert found.inline_styles == 0
    assert 'data-spec-url="/api/docs/openapi.json"' in docs.text
    spec = await client.get("/api/docs/openapi.json")
    assert spec.status_code == 200 and spec.json()["info"]["title"]
    assert (await client.get("/static/js/api-docs.js")).status_code == 200


def test_signed_in_means_a_person_in_the_session() -> None:
    assert sessions.signed_in({"session": {"uid": "u", "ctx": ""}})  # type: ignore[typeddict-item]
    assert not sessions.signed_in({"session": {"locale": "en"}})  # type: ignore[typeddict-item]
    assert not sessions.signed_in({"type": "http"})  # type: ignore[typeddict-item]


# Inline code or style a browser would refuse under the policy; Jinja's own syntax does not match these.
INLINE = re.compile(
    r"<style\b|\sstyle\s*=|<script\b(?![^>]*\bsrc=)|\son[a-z]+\s*=|javascript:", re.IGNORECASE
)
# Rendered by WeasyPrint on the server into a PDF, never answered to a browser as HTML.
SERVER_ONLY = {"selfcheck/reports/templates/selfcheck/report_pdf.html"}


def test_no_template_holds_inline_code_or_style() -> None:
    portal = Path(portal_package.__file__).resolve().parent
    templates = [p for p in portal.rglob("*.html") if "node_modules" not in p.parts]
    assert len(templates) > 50  # every package's templates, not an empty search
    found = [
        f"{path.relative_to(portal)}: {match.group(0)!r}"
        for path in templates
        if str(path.relative_to(portal)) not in SERVER_ONLY
        for match in INLINE.finditer(path.read_text())
    ]
    assert not found, "\n".join(found)
