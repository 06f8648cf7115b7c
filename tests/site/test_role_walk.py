"""Every demo role walks the pages it is shown, on both databases.

One rule per action (``portal/*/policies.py``) decides both what a service allows and what a page offers.
This walk is the proof from outside: signed in as each kind of demo person, it follows every link the
pages show (menus included) and presses every button that has nothing to fill in, and fails on a link
that answers 403, 404 or 500, or a button that answers 403, 422 or 500. Forms with fields to fill in are
opened (their page is a link) but not sent: a 422 there is the form's own answer to empty input.

Every page and fragment on the way is also held to the Content-Security-Policy it is sent with: no
inline script, event handler, ``javascript:`` link or ``style`` attribute, and a ``<style>`` block only
when the policy names its hash (the dashboard chart's).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from portal.app import create_app
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.seed import seed_demo
from portal.evidence.store import storage_from_settings, use_storage
from portal.identity import services as identity
from portal.identity.principal import Context, ContextKind
from portal.models.selfcheck import Hazard, HazardStatus
from tests.fixtures.databases import fresh_database
from tests.fixtures.web import post_form, sign_in

PAGES_PER_ROLE = 80
PER_SHAPE = 3  # pages of one shape (ids aside) worth opening: the fourth hazard looks like the third
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Not pressed: they end or change the session itself, or take the walker's own means away.
UNPRESSED = re.compile(r"^/(signout|switch|lang)\b|/sessions/|/revoke\b|/remove\b|/delete\b|/sign\b")
# Not followed: files and machinery rather than pages.
UNFOLLOWED = re.compile(r"^/(static|vendor|storage|api/docs)/|\.(pdf|svg|png|jpe?g)$|/download\b")


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    fill_in: bool = False  # has a field a person types or picks


class PageParser(HTMLParser):
    """The links (``a href``, ``hx-get``) and the POST forms of one page; what in it is inline code or
    style (``inline``) and the hashes of its ``<style>`` blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self.inline: list[str] = []
        self.style_hashes: list[str] = []
        self._style: list[str] | None = None
        self._svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self._inline_code(tag, a)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if a.get("hx-get"):
            self.links.append(a["hx-get"])
        if tag == "form":
            method = a.get("method", "get").lower()
            self._form = Form(a.get("action", "")) if method == "post" else None
            if method == "get" and a.get("action"):
                self.links.append(a["action"])
        elif self._form is not None and tag in ("input", "textarea", "select"):
            kind = a.get("type", "text").lower()
            if tag == "input" and kind in ("hidden", "submit", "button"):
                if a.get("name"):
                    self._form.fields[a["name"]] = a.get("value", "")
            elif tag == "input" and kind in ("checkbox", "radio") and "required" not in a:
                pass  # optional choices: the form can be sent without them
            else:
                self._form.fill_in = True

    def _inline_code(self, tag: str, a: dict[str, str]) -> None:
        if tag == "script" and not a.get("src"):
            self.inline.append("<script> without src")
        if tag == "style":
            self._style = []
        if tag == "svg":
            self._svg += 1
        for name, value in a.items():
            if name == "style" or name.startswith("on") or value.strip().lower().startswith("javascript:"):
                self.inline.append(f'<{tag} {name}="{value[:40]}">')

    def handle_data(self, data: str) -> None:
        if self._style is not None:
            self._style.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg -= 1
        if tag == "style" and self._style is not None:
            # Inside SVG the browser decodes entities in a style block (foreign content), in HTML it does not.
            text = "".join(self._style)
            text = html.unescape(text) if self._svg else text
            self.style_hashes.append(
                "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
            )
            self._style = None
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def refused_inline(parser: PageParser, policy: str) -> list[str]:
    """What of the page the Content-Security-Policy ``policy`` would refuse."""
    style_src = next((d for d in policy.split(";") if d.strip().startswith("style-src ")), "")
    allowed = {s.strip("'") for s in style_src.split()[1:]}
    refused = list(parser.inline)
    refused += [f"<style> block {h}" for h in parser.style_hashes if h not in allowed]
    return refused


def _local(href: str, here: str) -> str | None:
    """A same-origin path to follow, or ``None``."""
    href = urldefrag(href)[0]
    if not href or href.startswith(("mailto:", "tel:", "javascript:")):
        return None
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return None
    if not parts.path.startswith("/"):
        base = here.rsplit("/", 1)[0]
        href = f"{base}/{href}"
    return href


@dataclass
class Walk:
    role: str
    visited: dict[str, int] = field(default_factory=dict)
    pressed: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def walk(client: AsyncTestClient, role: str, start: str) -> Walk:
    result = Walk(role)
    queue: deque[tuple[str, str]] = deque([(start, "(home)")])
    forms: dict[str, tuple[Form, str]] = {}
    shapes: dict[str, int] = {}
    while queue and len(result.visited) < PAGES_PER_ROLE:
        path, came_from = queue.popleft()
        if path in result.visited or UNFOLLOWED.search(urlsplit(path).path):
            continue
        shape = UUID.sub("{id}", urlsplit(path).path)
        if shapes.get(shape, 0) >= PER_SHAPE:
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
        response = await client.get(path)
        result.visited[path] = response.status_code
        if response.status_code in (403, 404) or response.status_code >= 500:
            result.problems.append(f"GET {path} → {response.status_code} (linked from {came_from})")
            continue
        if response.status_code in (301, 302, 303, 307):
            target = _local(response.headers["location"], path)
            if target and not target.startswith("/signin"):
                queue.append((target, path))
            continue
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        parser = PageParser()
        parser.feed(response.text)
        policy = response.headers.get("content-security-policy", "")
        if not policy:
            result.problems.append(f"GET {path}: no Content-Security-Policy")
        for what in refused_inline(parser, policy):
            result.problems.append(f"GET {path}: {what}, refused by the page's Content-Security-Policy")
        for href in parser.links:
            target = _local(href, path)
            if target and target not in result.visited:
                queue.append((target, path))
        for form in parser.forms:
            action = _local(form.action, path) or path
            forms.setdefault(action, (form, path))
    for action, (form, page) in sorted(forms.items()):
        if form.fill_in or UNPRESSED.search(urlsplit(action).path):
            continue
        response = await post_form(client, action, form.fields)
        result.pressed[action] = response.status_code
        if response.status_code in (403, 422) or response.status_code >= 500:
            result.problems.append(f"POST {action} → {response.status_code} (a button on {page})")
    return result


@pytest.fixture(scope="module")
def city_settings(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_database(db_kind, tmp_path_factory.mktemp("role-walk"), "role_walk") as settings:
        yield settings.model_copy(update={"demo": True})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def city(city_settings: Settings) -> AsyncIterator[list[tuple[str, str, Context]]]:
    """The demo city, seeded as ``portal demo`` seeds it; one person for each kind of role in it."""
    use_storage(storage_from_settings(city_settings))
    try:
        await seed_demo(city_settings)
    finally:
        use_storage(None)
    db = Database(city_settings)
    people = await identity.demo_users(db)
    async with db.session(Scope.system("test: the busiest unit")) as session:
        # Members walk the unit with the most hazards still open: the most steps and buttons to see.
        busiest = str(
            (
                await session.execute(
                    select(Hazard.tenant_id)
                    .where(Hazard.status != HazardStatus.CLOSED)
                    .group_by(Hazard.tenant_id)
                    .order_by(func.count().desc(), Hazard.tenant_id)
                    .limit(1)
                )
            ).scalar_one()
        )
    await db.dispose()
    chosen: dict[str, tuple[str, str, Context]] = {}
    for person in people:
        for ctx in person.contexts:
            if ctx.kind is ContextKind.MEMBER and ctx.key != busiest:
                continue
            kind = f"{ctx.kind.value}:{ctx.role}" if ctx.kind is ContextKind.MEMBER else ctx.kind.value
            chosen.setdefault(kind, (kind, person.login, ctx))
    return sorted(chosen.values(), key=lambda c: c[0])


async def test_every_demo_role_is_shown_only_what_it_may_do(
    city_settings: Settings, city: list[tuple[str, str, Context]]
) -> None:
    kinds = {kind for kind, _login, _ctx in city}
    # Every kind of person the demo city has: the tenant's three roles and the four outside roles.
    assert {"member:responsible", "member:manager", "member:staff", "warden", "regulator", "insurer"} <= kinds
    problems: list[str] = []
    for kind, login, ctx in city:
        app = create_app(city_settings)
        async with AsyncTestClient(app=app, base_url="http://localhost.local") as client:
            client.follow_redirects = False
            signed_in = await sign_in(client, login, ctx.token)
            assert signed_in.status_code == 303, (kind, signed_in.text[:300])
            result = await walk(client, kind, signed_in.headers["location"])
        # The walk saw something: at least the home page and a page behind it.
        assert len(result.visited) >= 2, (kind, result.visited)
        problems += [f"{kind} ({login}): {p}" for p in result.problems]
    assert not problems, "\n".join(problems)
