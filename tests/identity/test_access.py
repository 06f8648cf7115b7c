"""Roles and scopes, default deny: every route declares who may call it, the guard enforces it, and the
tenancy scope still turns another tenant's object into a 404. Plus CSRF on every state-changing route."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from litestar import Litestar, get, post
from litestar.exceptions import NotFoundException
from litestar.handlers.http_handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from portal.app import create_app
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.core.web import DB
from portal.identity import access
from portal.identity.dependencies import CurrentPrincipal
from portal.identity.principal import Context, ContextKind, Principal
from portal.models.audit import AuditEntry
from portal.models.identity import User
from portal.models.tenants import MemberRole
from portal.tenants import services as tenant_services
from tests.fixtures.databases import make_settings
from tests.fixtures.factories import World
from tests.fixtures.web import csrf_token, post_form, sign_in

FORBIDDEN_ZH = "您无权执行此操作。"
NOT_FOUND_ZH = "页面不存在"


# -- probes: a manager-only tenant page and an admin-only page, declared like any route ------------------


@get(
    "/t/{tenant_id:uuid}/probe/managers",
    opt=access.member(MemberRole.RESPONSIBLE, MemberRole.MANAGER),
    include_in_schema=False,
)
async def managers_probe(db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]) -> str:
    if await tenant_services.get_tenant(db, tenant_id) is None:
        raise NotFoundException()
    return "managers only"


@get("/admin/probe", opt=access.admin(), include_in_schema=False)
async def admin_probe() -> str:
    return "admin only"


@get("/probe/undeclared", include_in_schema=False)
async def undeclared_probe() -> str:
    return "should never answer"


@post("/probe/undeclared", include_in_schema=False)
async def undeclared_post_probe() -> str:
    return "should never answer"


@pytest_asyncio.fixture(loop_scope="session")
async def probe_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings.model_copy(update={"demo": True}))
    for handler in (managers_probe, admin_probe, undeclared_probe, undeclared_post_probe):
        app.register(handler)
    async with AsyncTestClient(app=app, base_url="http://localhost.local") as c:
        c.follow_redirects = False
        yield c


# -- every route declares -----------------------------------------------------------------------------


def _handlers(app: Litestar) -> list[tuple[str, HTTPRouteHandler]]:
    out = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            out.append((route.path, handler))
    return out


def test_every_route_handler_declares_its_access(tmp_path: Path) -> None:
    """Walks the real app: a handler without ``opt=access...`` answers 403 to everyone; it fails here."""
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path, demo=True))
    handlers = _handlers(app)
    assert len(handlers) > 15  # the walk sees the app's routes (pages, API, static, docs)
    missing = sorted(
        f"{path} {sorted(h.http_methods)} ({h.handler_name})"
        for path, h in handlers
        if access.access_of(h) is None
    )
    assert not missing, "routes without an access declaration (see portal/identity/access.py):\n" + "\n".join(
        missing
    )
    paths = {path for path, _h in handlers}
    for must in ("/signin", "/health", "/api/docs", "/api/docs/openapi.json", "/static", "/vendor"):
        assert any(p == must or p.startswith(must + "/") for p in paths), must
    rules = {(path, m): access.access_of(h) for path, h in handlers for m in h.http_methods}
    assert rules["/signin", "GET"] == rules["/signin/demo", "POST"] == access.public()
    assert rules["/health", "GET"] == access.public()
    assert rules["/account/sessions", "GET"] == access.signed_in()
    assert rules["/switch", "GET"] == rules["/switch", "POST"] == access.signed_in()
    assert rules["/t/{tenant_id:uuid}", "OPTIONS"] == access.public()  # Litestar's own 204 + Allow
    # Also where the controller declares the access for all its handlers (the OPTIONS handler inherits it).
    for path in ("/api/v1/tenants", "/evidence/slots"):
        options = rules[path, "OPTIONS"]
        assert options is not None and options.is_public, path
    static = next(r for (p, _m), r in rules.items() if p.startswith("/static"))
    assert static is not None and static.is_public and not static.throttle


async def test_a_route_without_declaration_answers_403_to_everyone(
    probe_client: AsyncTestClient, world: World
) -> None:
    signed_out = await probe_client.get("/probe/undeclared")
    assert signed_out.status_code == 403 and FORBIDDEN_ZH in signed_out.text
    await sign_in(probe_client, world.users["regulator"].login)
    for response in (
        await probe_client.get("/probe/undeclared"),
        await post_form(probe_client, "/probe/undeclared", {}),
    ):
        assert response.status_code == 403
        assert "should never answer" not in response.text


# -- the role × route-family matrix ----------------------------------------------------------------------

FAMILIES = ("home_a", "list", "api_a", "api_c", "account", "switch", "managers_a", "admin")
R = "signin"  # signed out: pages redirect to /signin, the API answers 401
EXPECTED: dict[str, tuple[int | str, ...]] = {
    #               home_a list api_a api_c account switch managers_a admin
    "responsible_a": (200, 200, 200, 404, 200, 200, 200, 403),
    "manager_a": (200, 200, 200, 404, 200, 200, 200, 403),
    "staff_a": (200, 200, 200, 404, 200, 200, 403, 403),
    "manager_b": (404, 200, 404, 404, 200, 200, 404, 403),
    "warden_a": (200, 200, 200, 404, 200, 200, 403, 403),
    "committee_a": (200, 200, 200, 404, 200, 200, 403, 403),
    "regulator_d1": (200, 200, 200, 404, 200, 200, 403, 403),
    "insurer": (403, 200, 404, 200, 200, 200, 403, 403),
    "admin": (403, 403, 403, 403, 200, 200, 403, 200),
    "signed_out": (R, R, 401, 401, R, R, R, R),
}
# What the tenants API lists for each (by tenant key), proving the scope behind the 200s.
LISTED: dict[str, set[str] | None] = {
    "responsible_a": {"a"},
    "manager_a": {"a"},
    "staff_a": {"a"},
    "manager_b": {"b"},
    "warden_a": {"a"},
    "committee_a": {"a"},
    "regulator_d1": {"a", "b"},
    "insurer": {"c"},
    "admin": None,
    "signed_out": None,
}


def _who(world: World, kind: str) -> tuple[str, str] | None:
    """(login, context token) of each principal kind."""
    a, b = world.tenants["a"], world.tenants["b"]
    assert world.insurer is not None
    return {
        "responsible_a": (world.users["both"].login, f"member:{a.id}"),
        "manager_a": (world.users["manager_a"].login, f"member:{a.id}"),
        "staff_a": (world.users["staff_a"].login, f"member:{a.id}"),
        "manager_b": (world.users["manager_b"].login, f"member:{b.id}"),
        "warden_a": (world.users["warden"].login, "warden:"),
        "committee_a": (world.users["committee"].login, f"committee:{world.grids['a'].committee_id}"),
        "regulator_d1": (world.users["regulator"].login, f"regulator:{world.d1.id}"),
        "insurer": (world.users["insurer"].login, f"insurer:{world.insurer.id}"),
        "admin": (world.users["admin"].login, "admin:"),
        "signed_out": None,
    }[kind]


def _path(world: World, family: str) -> str:
    a, c = world.tenants["a"], world.tenants["c"]
    return {
        "home_a": f"/t/{a.id}",
        "list": "/tenants",
        "api_a": f"/api/v1/tenants/{a.id}",
        "api_c": f"/api/v1/tenants/{c.id}",
        "account": "/account/sessions",
        "switch": "/switch",
        "managers_a": f"/t/{a.id}/probe/managers",
        "admin": "/admin/probe",
    }[family]


@pytest.mark.parametrize("kind", list(EXPECTED))
async def test_role_by_route_family_matrix(
    probe_client: AsyncTestClient, access_world: World, kind: str
) -> None:
    world = access_world
    who = _who(world, kind)
    if who is not None:
        login, ctx = who
        signed = await sign_in(probe_client, login, ctx=ctx)
        assert signed.status_code == 303, signed.text
        assert (await probe_client.get("/switch")).status_code == 200
    got: dict[str, int | str] = {}
    for family in FAMILIES:
        path = _path(world, family)
        response = await probe_client.get(path)
        code: int | str = response.status_code
        if code in (302, 303) and response.headers["location"].startswith("/signin"):
            code = R
            assert response.headers["location"] == f"/signin?next={path}"  # no notice: never signed in
        elif code == 403:
            assert FORBIDDEN_ZH in response.text or response.json()["status"] == 403, (family, response.text)
        elif code == 404 and not path.startswith("/api/"):
            assert NOT_FOUND_ZH in response.text and "测试单位" not in response.text
        got[family] = code
    assert got == dict(zip(FAMILIES, EXPECTED[kind], strict=True))
    listed = await probe_client.get("/api/v1/tenants/", params={"limit": 500})
    expected_keys = LISTED[kind]
    if expected_keys is None:
        assert listed.status_code in (401, 403)
    else:
        assert listed.status_code == 200
        codes = {item["code"] for item in listed.json()["items"]}
        assert codes == {world.tenants[k].code for k in expected_keys}


async def test_wrong_role_is_403_in_english_too(probe_client: AsyncTestClient, access_world: World) -> None:
    await sign_in(probe_client, access_world.users["staff_a"].login)
    await post_form(probe_client, "/lang", {"lang": "en"})
    page = await probe_client.get(f"/t/{access_world.tenants['a'].id}/probe/managers")
    assert page.status_code == 403 and "You are not allowed to do this." in page.text
    api = await probe_client.get("/admin/probe", headers={"accept": "application/json"})
    assert api.status_code == 403 and api.json()["detail"] == "You are not allowed to do this."


async def test_roles_are_rechecked_on_every_request(
    probe_client: AsyncTestClient, database: Database, access_world: World
) -> None:
    admin = access_world.users["admin"]
    await sign_in(probe_client, admin.login)
    assert (await probe_client.get("/admin/probe")).status_code == 200
    async with database.session(Scope.system("test: demote")) as s:
        user = await s.get(User, admin.id)
        assert user is not None
        user.is_platform_admin = False
    assert (await probe_client.get("/admin/probe")).status_code == 403  # the admin context is gone
    assert (await probe_client.get("/account/sessions")).status_code == 200  # still signed in


# -- the declaration API ---------------------------------------------------------------------------------


def _principal(kind: ContextKind | None, roles: frozenset[str] = frozenset()) -> Principal:
    context = Context(kind, "k", "") if kind is not None else None
    return Principal(uuid.uuid4(), "x", None, context, None, roles=roles)


def test_declarations_combine_and_decide() -> None:
    assert dict(access.member()) == {"access": access.member()}
    assert {**access.public(), "exclude_from_csrf": True} == {
        "access": access.public(),
        "exclude_from_csrf": True,
    }
    managers = access.member(MemberRole.MANAGER, MemberRole.RESPONSIBLE)
    staff = _principal(ContextKind.MEMBER, frozenset({"staff"}))
    both = _principal(ContextKind.MEMBER, frozenset({"staff", "manager"}))
    regulator = _principal(ContextKind.REGULATOR)
    insurer = _principal(ContextKind.INSURER)
    no_role = _principal(None)
    assert not access.allows(managers, staff) and access.allows(managers, both)
    assert access.allows(access.member(), staff) and not access.allows(access.member(), regulator)
    assert not access.allows(managers, regulator)
    either = managers | access.cross_tenant(ContextKind.REGULATOR)
    assert (
        access.allows(either, regulator)
        and access.allows(either, both)
        and not access.allows(either, insurer)
    )
    assert access.allows(access.cross_tenant(), insurer) and not access.allows(access.cross_tenant(), staff)
    assert access.allows(access.insurer(), insurer) and not access.allows(access.insurer(), regulator)
    assert not access.allows(access.admin(), regulator) and access.allows(
        access.admin(), _principal(ContextKind.ADMIN)
    )
    assert access.allows(access.signed_in(), no_role) and not access.allows(access.signed_in(), None)
    assert not access.allows(access.member(), no_role) and not access.allows(access.cross_tenant(), no_role)
    assert access.allows(access.public(), None)
    # A key is not a person: it reaches only routes that take keys, and nothing reaches those signed out.
    key = Principal(
        uuid.uuid4(), "fsk_x", None, Context(ContextKind.INSURER, "k", ""), None, api_key_id=uuid.uuid4()
    )
    assert not access.allows(access.api_key(), None) and not access.api_key().is_public
    assert access.allows(access.api_key(), key) and access.allows(access.member() | access.api_key(), key)
    assert not access.allows(access.insurer(), key) and not access.allows(access.signed_in(), key)
    assert access.api_key().describe() == "api_key"
    with pytest.raises(ValueError, match="member"):
        access.cross_tenant(ContextKind.MEMBER)
    assert either.describe() == "member(manager,responsible) | roles(regulator)"


# -- CSRF: every state-changing route refuses a request without the token -----------------------------

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _fill(path: str, tenant_id: uuid.UUID) -> str:
    def one(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2)
        if kind == "uuid":
            return str(tenant_id) if name == "tenant_id" else str(uuid.uuid4())
        if kind == "int":
            return "1"
        return "probe"

    return re.sub(r"\{(\w+):(\w+)\}", one, path)


def _csrf_exempt(app: Litestar, path: str, handler: HTTPRouteHandler) -> bool:
    if handler.opt.get("exclude_from_csrf"):
        return True
    config = app.csrf_config
    assert config is not None
    patterns = [config.exclude] if isinstance(config.exclude, str) else list(config.exclude or [])
    return any(re.search(p, path) for p in patterns)


async def _audit_count(database: Database) -> int:
    async with database.session(Scope.system("test: audit count")) as s:
        return int((await s.execute(select(func.count()).select_from(AuditEntry))).scalar_one())


async def test_every_state_changing_route_refuses_a_missing_csrf_token(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    app = client.app
    a = world.tenants["a"]
    manager = world.users["manager_a"]
    await sign_in(client, manager.login)
    assert await csrf_token(client)  # the cookie is there; the requests below just do not send it
    before_audit = await _audit_count(database)
    checked: list[str] = []
    exempt: list[str] = []
    for path, handler in _handlers(app):
        for method in sorted(set(handler.http_methods) & UNSAFE):
            if _csrf_exempt(app, path, handler):
                exempt.append(path)
                continue
            url = _fill(path, a.id)
            form: dict[str, Any] = {
                "lang": "en",
                "ctx": f"member:{a.id}",
                "name": "x",
                "login": manager.login,
            }
            response = await client.request(method, url, data=form)
            assert response.status_code == 403, (method, url, response.status_code, response.text[:300])
            checked.append(f"{method} {path}")
    for must in ("POST /signin/demo", "POST /signout", "POST /switch", "POST /lang"):
        assert must in checked
    assert "POST /account/sessions/signout-everywhere" in checked
    assert all(p.startswith(("/storage/", "/api/")) for p in exempt), exempt
    # Nothing changed: still signed in, same language, no "sign out everywhere", no audit entry.
    assert (await client.get(f"/t/{a.id}")).status_code == 200
    async with database.session(Scope.system("test: reread")) as s:
        user = await s.get(User, manager.id)
        assert user is not None and user.locale in (None, "zh_CN") and user.sessions_valid_after is None
    assert await _audit_count(database) == before_audit
