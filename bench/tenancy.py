"""Tenancy benchmark: the cost of the two-fold scope, page throughput, and an isolation probe, in one run.

    .venv/bin/python bench/tenancy.py [--tenants 10000] [--quick] [--write/--no-write]

1. makes a fresh PostgreSQL database in the production shape and generates a city of ``--tenants`` tenants;
2. times the tenant home page's queries with the scope on (portal_app: ORM criteria + FORCE'd RLS) and off
   (superuser + system scope), interleaved;
3. serves ``portal.asgi:app`` with granian, then uvicorn (one process each), and drives ``GET /t/{id}`` with
   wrk (or the Python load generator of ``bench/_load.py`` when wrk is missing);
4. probes isolation over HTTP: random (principal, object) pairs, interleaved with requests that fail inside
   their transaction, checking that every answer is the principal's own tenant or exactly 404;
5. prints the table and (full runs) writes ``bench/results-tenancy.md``.

The database is dropped and the servers are stopped at the end, also on error. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _city
import _load
from _probe import failure_kinds, isolation_probe
from _web import (
    ANONYMOUS_SESSIONS,
    REDIS_URL,
    SECRET,
    Principal,
    Server,
    drive,
    forget_sessions,
    load,
    log,
    redis_delete,
    sign_in_many,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results-tenancy.md"


@dataclass
class Row:
    metric: str
    target: str
    measured: str
    machine_load: str
    ok: bool | None = None  # None: informational


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, target: str, measured: str, machine_load: str, ok: bool | None = None) -> None:
        self.rows.append(Row(metric, target, measured, machine_load, ok))

    def table(self) -> str:
        lines = ["| metric | target | measured | machine load (1/5 min) |", "|---|---|---|---|"]
        for r in self.rows:
            verdict = "" if r.ok is None else (" ✅" if r.ok else " ❌ missed")
            lines.append(f"| {r.metric} | {r.target} | {r.measured}{verdict} | {r.machine_load} |")
        return "\n".join(lines)


# -- 2. query overhead of the scope ---------------------------------------------------------------------


def _settings(database_url: str, tmp: Path, **extra: Any) -> Any:
    from portal.config import load_settings

    return load_settings(
        env="test",
        database_url=database_url,
        storage_url=f"file://{tmp / 'objects'}",
        broker_url="inprocess://",
        secret_key=SECRET,
        scheduler=False,
        log_level="WARNING",
        rate_limit_signin_per_minute=100_000,
        rate_limit_public_per_minute=100_000,
        **extra,
    )


async def _page_queries(session: Any, tenant: _city.BenchTenant, member: _city.Member) -> None:
    """What GET /t/{id} asks the database, by the code that serves it: ``provide_principal``'s membership
    re-check with the person's account (``web.load_person``, one statement), then the route's ``home_data``:
    ``get_tenant`` (+ its jurisdiction), ``roster``, the cross-tenant read record (nothing for a member) and
    ``dashboard.build`` (self-checks, hazards, patrols of key units, the ledger for managers and responsible
    persons), with the same arguments as the route."""
    from portal.core.tenancy import Scope
    from portal.dashboard.routes import home_data
    from portal.identity import dependencies as web
    from portal.identity.principal import Context, ContextKind, Principal

    person, roles = await web.load_person(session, member.user_id, tenant.id)
    if person is None or not roles:
        raise AssertionError(f"{member.login} is not a member of {tenant.code} any more")
    me = Principal(
        user_id=person.id,
        display_name=person.display_name,
        locale=person.locale,
        context=Context(ContextKind.MEMBER, str(tenant.id), "", role=web._strongest(roles)),
        scope=Scope.tenant(tenant.id),
        roles=roles,
    )
    data = await home_data(session, me, tenant.id)
    if data is None or len(data.members) != len(tenant.members) or len(data.dash.months) != 12:
        raise AssertionError(f"page queries came back incomplete for {tenant.code}")


async def measure_overhead(db: str, city: _city.City, *, iterations: int, batch: int, tmp: Path) -> dict:
    """(a) portal_app + Scope.tenant versus (b) superuser + Scope.system, same service calls, alternating
    batches of ``batch`` pages (the arm that goes first is drawn per round), after a warm-up."""
    from sqlalchemy import event

    from portal import registry
    from portal.core.db import Database
    from portal.core.tenancy import Scope

    registry.install()
    app_db = Database(_settings(_city.url("portal_app", db), tmp, database_pool_size=2))
    su_db = Database(_settings(_city.url("postgres", db), tmp, database_pool_size=2))
    baseline_scope = Scope.system("bench baseline: superuser, no criteria")

    async def scoped(t: _city.BenchTenant, m: _city.Member) -> None:  # (a) criteria + RLS
        async with app_db.session(Scope.tenant(t.id)) as s:
            await _page_queries(s, t, m)

    async def bare(t: _city.BenchTenant, m: _city.Member) -> None:  # (b) neither
        async with su_db.session(baseline_scope) as s:
            await _page_queries(s, t, m)

    async def criteria_only(t: _city.BenchTenant, m: _city.Member) -> None:  # (c) superuser: no RLS
        async with su_db.session(Scope.tenant(t.id)) as s:
            await _page_queries(s, t, m)

    arms = {"scoped": scoped, "bare": bare, "criteria_only": criteria_only}
    statements: dict[str, int] = {}
    counting = {"n": 0}

    def count(*_a: Any) -> None:
        counting["n"] += 1

    rnd = random.Random(2)
    try:
        for name, fn in arms.items():  # warm-up, then count the statements of one page (for the report)
            for _ in range(min(300, iterations // 5)):
                t = rnd.choice(city.tenants)
                await fn(t, rnd.choice(t.members))
            engine = (app_db if name == "scoped" else su_db).engine.sync_engine
            event.listen(engine, "before_cursor_execute", count)
            counting["n"] = 0
            t = rnd.choice(city.tenants)
            await fn(t, t.manager)
            statements[name] = counting["n"]
            event.remove(engine, "before_cursor_execute", count)
        samples: dict[str, list[float]] = {k: [] for k in arms}
        loads = [load()]
        for _ in range(max(1, iterations // batch)):
            picks = [(t, rnd.choice(t.members)) for t in rnd.choices(city.tenants, k=batch)]
            order = list(arms)
            rnd.shuffle(order)
            for name in order:
                fn, out = arms[name], samples[name]
                for t, m in picks:
                    t0 = time.perf_counter()
                    await fn(t, m)
                    out.append((time.perf_counter() - t0) * 1000)
        loads.append(load())
    finally:
        await app_db.dispose()
        await su_db.dispose()
    stats: dict[str, Any] = {}
    for name, xs in samples.items():
        xs.sort()
        stats[name] = {
            "n": len(xs),
            "p50": _load.percentile(xs, 50),
            "p95": _load.percentile(xs, 95),
            "mean": statistics.fmean(xs),
            "statements": statements[name],
        }
    stats["load"] = " → ".join(loads)
    return stats


# -- 3a. CPU per request inside the app process (no HTTP server, no load generator) ---------------------


async def _asgi(app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple:
    """One request straight into the ASGI app; returns (status, headers, body)."""
    path_only, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    received = False
    out: dict[str, Any] = {"status": 0, "headers": [], "body": b""}

    async def receive() -> dict:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            out["status"], out["headers"] = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    cookies = {}
    for k, v in out["headers"]:
        if k.lower() == b"set-cookie":
            name, _, value = v.decode().split(";", 1)[0].partition("=")
            cookies[name] = value
    return out["status"], cookies, out["body"]


# cProfile's own time grouped by what the code is part of (first match wins).
PACKAGES = [
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("asyncpg", ("asyncpg/",)),
    ("Litestar (routing, DI, middleware, responses)", ("litestar/",)),
    ("Redis client (session load + save)", ("redis/",)),
    ("Jinja2 + markupsafe (template)", ("jinja2/", "markupsafe/", "/templates/")),
    ("asyncio + sockets (I/O plumbing)", ("asyncio/", "selectors.py", "socket", "select.epoll")),
    ("portal: scope enforcement (tenancy.py)", ("portal/core/tenancy.py",)),
    ("portal: other code", ("/portal/",)),
    ("advanced-alchemy", ("advanced_alchemy/",)),
    ("greenlet", ("greenlet",)),
]


async def inprocess_ladder(db: str, city: _city.City, *, n: int, tmp: Path, profile: bool) -> dict:
    """CPU time of the web process per request for three steps of the same signed-in request:
    ``GET /`` (session + provide_principal, then a redirect), ``GET /api/v1/tenants/{id}`` (+ get_tenant,
    JSON) and ``GET /t/{id}`` (+ roster, dashboard, chart, template). 1000 / (ms of CPU) is the ceiling of one
    process."""
    import logging

    from portal.app import create_app

    settings = _settings(_city.url("portal_app", db), tmp, redis_url=REDIS_URL, demo=True)
    # The production shape: templates loaded once (no stat() per template per request), Secure cookies (this
    # script reads and sends cookies itself, so they work over plain http here).
    app = create_app(settings.model_copy(update={"env": "production"}))
    logging.getLogger().setLevel(logging.WARNING)  # Litestar's default logging config sets root to INFO
    tenant = city.tenants[len(city.tenants) // 2]
    out: dict[str, Any] = {}
    async with app.lifespan():
        host = {"host": "127.0.0.1"}
        _s, cookies, _b = await _asgi(app, "GET", "/", host)
        ANONYMOUS_SESSIONS.append(cookies.get("portal_session", ""))
        token = cookies["portal_csrf"]
        form = urllib.parse.urlencode({"login": tenant.manager.login}).encode()
        form_headers = {
            **host,
            "cookie": f"portal_csrf={token}",
            "x-csrftoken": token,
            "content-type": "application/x-www-form-urlencoded",
            "content-length": str(len(form)),
        }
        status, cookies, _b = await _asgi(app, "POST", "/signin/demo", form_headers, form)
        if status != 303:
            raise RuntimeError(f"in-process demo sign-in answered {status}")
        sid = cookies["portal_session"]
        headers = {**host, "cookie": f"portal_session={sid}; portal_csrf={token}"}
        steps = {
            "GET / (session + principal → redirect)": ("/", 302),
            "GET /api/v1/tenants/{id} (+ get_tenant, JSON)": (f"/api/v1/tenants/{tenant.id}", 200),
            "GET /t/{id} (+ roster, dashboard, chart, template)": (f"/t/{tenant.id}", 200),
        }
        for label, (path, expected) in steps.items():
            for _ in range(min(200, n)):
                status, _c, _b = await _asgi(app, "GET", path, headers)
            if status != expected:
                raise RuntimeError(f"in-process {path} answered {status}")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                await _asgi(app, "GET", path, headers)
            out[label] = {
                "cpu_ms": (time.process_time() - cpu0) * 1000 / n,
                "wall_ms": (time.perf_counter() - wall0) * 1000 / n,
            }
        if profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            for _ in range(n):
                await _asgi(app, "GET", f"/t/{tenant.id}", headers)
            prof.disable()
            totals: dict[str, float] = {}
            for (filename, _line, func), row in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
                where = filename if filename != "~" else func
                part = next(
                    (name for name, keys in PACKAGES if any(k in where for k in keys)),
                    "other (builtins called by all of the above)",
                )
                totals[part] = totals.get(part, 0.0) + row[2]
            everything = sum(totals.values()) or 1.0
            out["profile"] = {k: v / everything for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    redis_delete([f"portal_sessions:{sid}"])
    return out


# -- 3./4. the app over HTTP (the web process and the probe: _web.py, _probe.py) ----------------------------


async def bare_ceiling(kind: str, db: str, args: argparse.Namespace, tmp: Path, report: Report) -> None:
    """The same server and load on ``bench/_bare_app.py``: one Litestar route, nothing else."""
    bare = Server(kind, db, tmp, app="bench._bare_app:app")
    try:
        bare.start()
        await bare.wait_ready()
        before = load()
        result = drive(bare.port, [("/", "")], conns=args.conns, seconds=max(3.0, args.seconds / 3))
        report.add(
            f"(info) {kind}: ceiling, a bare Litestar app (one route answering 'ok': no middleware, session, "
            "database or template; same server and load)",
            "—",
            f"{result['rps']:,.0f} req/s, p50 / p95 {result['p50_ms']:.1f} / {result['p95_ms']:.1f} ms "
            f"(non-200: {result['non_200']})",
            f"{before} → {load()}",
        )
    finally:
        bare.stop()


async def lightest_signed_in(
    kind: str, port: int, principals: list[Principal], args: argparse.Namespace, report: Report
) -> None:
    """Between the page and the bare ceiling: a signed-in request that does what every page does (session,
    principal re-check) plus one row, answered as JSON without a template."""
    plan = [(f"/api/v1/tenants/{p.tenant.id}", p.cookie) for p in principals]
    before = load()
    result = drive(port, plan, conns=args.conns, seconds=max(3.0, args.seconds / 3))
    report.add(
        f"(info) {kind}: the lightest signed-in request, GET /api/v1/tenants/{{id}} (session, principal "
        "re-check, one row, JSON; same server and load)",
        "—",
        f"{result['rps']:,.0f} req/s, p50 / p95 {result['p50_ms']:.1f} / {result['p95_ms']:.1f} ms "
        f"(non-200: {result['non_200']})",
        f"{before} → {load()}",
    )


async def serve_and_measure(
    kind: str, db: str, city: _city.City, args: argparse.Namespace, tmp: Path, report: Report
) -> None:
    server = Server(kind, db, tmp)
    principals: list[Principal] = []
    try:
        server.start()
        await server.wait_ready()
        rnd = random.Random(5)
        picks = rnd.sample(city.tenants, k=min(len(city.tenants), args.principals))
        principals = await sign_in_many(server.port, [(t, t.manager) for t in picks])
        log(f"{kind}: listening on {server.port}, {len(principals)} managers signed in")
        plan = [(f"/t/{p.tenant.id}", p.cookie) for p in principals[:32]]
        drive(server.port, plan, conns=args.conns, seconds=args.warmup)  # warm-up: pool, templates, caches
        before = load()
        result = drive(server.port, plan, conns=args.conns, seconds=args.seconds)
        loads = f"{before} → {load()}"
        log(f"{kind}: {json.dumps({k: v for k, v in result.items() if k != 'tool'})}")
        clean = result["non_200"] == 0 and result["socket_errors"] == 0
        report.add(
            f"{kind}: GET /t/{{id}} throughput ({result['tool']}, {args.seconds:.0f} s, "
            f"{len(plan)} signed-in managers)",
            "≥ 1,000 req/s",
            f"{result['rps']:,.0f} req/s ({result['requests']:,} requests, non-200: {result['non_200']}, "
            f"socket errors: {result['socket_errors']})",
            loads,
            clean and result["rps"] >= 1000,
        )
        report.add(
            f"{kind}: GET /t/{{id}} latency p50 / p95 / p99",
            "p95 ≤ 20 ms",
            f"{result['p50_ms']:.1f} / {result['p95_ms']:.1f} / {result['p99_ms']:.1f} ms",
            loads,
            result["p95_ms"] <= 20,
        )
        await lightest_signed_in(kind, server.port, principals[:32], args, report)
        await bare_ceiling(kind, db, args, tmp, report)
        log(f"{kind}: isolation probe, {args.probe:,} object requests")
        before = load()
        started = time.perf_counter()
        counts = await isolation_probe(server.port, db, city, principals, requests=args.probe, seed=9)
        loads = f"{before} → {load()}"
        kinds = failure_kinds(server.log_path.read_text(errors="replace"))
        log(f"{kind}: probe {counts} in {time.perf_counter() - started:.1f}s; server logged {kinds}")
        report.add(
            f"{kind}: isolation probe over HTTP ({len(principals)} members of random tenants; "
            "/t/{id}, /api/v1/tenants/{id}, /tenants?q=, while statements are cancelled and connections "
            "ended from outside)",
            "0 leaks; own → 200, foreign → 404",
            f"{counts.requests:,} requests: own 200 {counts.own_200:,}, foreign 404 {counts.foreign_404:,}, "
            f"searches clean {counts.searches_clean:,}; injected: {counts.injected.get('cancelled', 0):,} "
            f"statements cancelled, {counts.injected.get('terminated', 0):,} connections ended → failed "
            f"mid-transaction (500) {counts.failures_500:,} "
            f"({', '.join(f'{k} {v}' for k, v in kinds.items()) or 'none logged'}), "
            f"**leaks {counts.leaks}**, unexpected {counts.unexpected}",
            loads,
            counts.leaks == 0 and counts.unexpected == 0 and counts.failures_500 > 0,
        )
        for ex in counts.examples:
            report.notes.append(f"{kind} probe: {ex}")
    finally:
        server.stop()
        forget_sessions(principals)


# -- environment ----------------------------------------------------------------------------------------


def environment(pg: dict[str, str]) -> list[str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = "?"
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        redis_version = str(client.info("server")["redis_version"])
        client.close()
    wrk = _load.wrk_path()
    wrk_version = "not installed (Python load generator used)"
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
        wrk_version = (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0]
    pkgs = ", ".join(
        f"{p} {version(p)}"
        for p in ("granian", "uvicorn", "litestar", "sqlalchemy", "advanced-alchemy", "asyncpg", "jinja2")
    )
    return [
        f"- CPUs: {os.cpu_count()} × {cpu}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.system()} "
        f"{platform.release()}",
        f"- PostgreSQL {pg['postgres']} (max_connections {pg['max_connections']}, shared_buffers "
        f"{pg['shared_buffers']}), Redis {redis_version}; all on loopback",
        f"- {pkgs}",
        f"- load generator: {wrk_version}",
    ]


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: unwind through the finally blocks (servers, database)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--tenants", type=int, default=None, help="tenants to generate (10,000; quick 1,000)")
    parser.add_argument("--quick", action="store_true", help="1,000 tenants, 5 s loads, 1,000 probe requests")
    parser.add_argument("--iterations", type=int, default=None, help="page-equivalents per arm (step 2)")
    parser.add_argument("--seconds", type=float, default=None, help="measured load per server (step 3)")
    parser.add_argument("--conns", type=int, default=16, help="concurrent connections of the load")
    parser.add_argument("--probe", type=int, default=None, help="object requests of the isolation probe")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the in-process page requests (where the CPU goes)"
    )
    parser.add_argument(
        "--write", action=argparse.BooleanOptionalAction, default=None, help="write bench/results-tenancy.md"
    )
    args = parser.parse_args()
    quick = args.quick
    args.tenants = args.tenants or (1_000 if quick else 10_000)
    args.iterations = args.iterations or (1_000 if quick else 5_000)
    args.seconds = args.seconds or (5.0 if quick else 15.0)
    args.warmup = 2.0 if quick else 3.0
    args.probe = args.probe or (1_000 if quick else 10_000)
    args.principals = 50 if quick else 300
    args.ladder = 300 if quick else 1_000
    write = (not quick) if args.write is None else args.write
    if args.seconds > 120 or args.probe > 100_000 or args.iterations > 100_000:
        parser.error("bounded run: --seconds ≤ 120, --probe ≤ 100,000, --iterations ≤ 100,000")

    from portal.core.logging import configure

    configure("WARNING")
    signal.signal(signal.SIGTERM, _interrupted)

    started = time.perf_counter()
    report = Report()
    if not _load.wrk_path():
        log("wrk is MISSING (apt-get install -y wrk): using the Python asyncio load generator instead")
    pg = asyncio.run(_city.server_facts())
    env_lines = environment(pg)
    db_name = None
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            before = load()
            db_name = _city.create_database()
            city = asyncio.run(_city.generate_city(db_name, args.tenants))
            log(
                f"database {db_name}: {len(city.tenants):,} tenants, {city.users:,} users, "
                f"{city.memberships:,} memberships, {city.selfchecks:,} self-checks, "
                f"{city.hazards:,} hazards, {city.ledger_entries:,} ledger entries in {city.seconds:.1f}s "
                "(+ ANALYZE)"
            )
            report.add(
                "Generated city (PostgreSQL, Core bulk insert + ANALYZE)",
                "10,000 tenants",
                f"{len(city.tenants):,} tenants, {city.users:,} users, {city.memberships:,} memberships, "
                f"{city.selfchecks:,} self-checks, {city.hazards:,} hazards, {city.ledger_entries:,} ledger "
                f"entries, {city.jurisdictions} jurisdictions (1 city / 10 districts / 100 streets) in "
                f"{city.seconds:.1f} s",
                f"{before} → {load()}",
                len(city.tenants) >= 10_000 if not quick else None,
            )

            log(f"query overhead: {args.iterations:,} page-equivalents per arm, interleaved batches")
            ov = asyncio.run(measure_overhead(db_name, city, iterations=args.iterations, batch=50, tmp=tmp))
            a, b, c = ov["scoped"], ov["bare"], ov["criteria_only"]
            log(f"query overhead: {json.dumps(ov)}")
            for q in ("p50", "p95"):
                pct = (a[q] / b[q] - 1) * 100
                report.add(
                    f"Scope overhead at {q}: tenant page queries (principal, get_tenant, roster, dashboard; "
                    f"{a['statements']} statements) as portal_app + Scope.tenant (criteria + RLS) "
                    "vs superuser + Scope.system (neither)",
                    "≤ 10 %",
                    f"{pct:+.1f} % ({a[q]:.2f} ms vs {b[q]:.2f} ms; {a['n']:,} pages each)",
                    ov["load"],
                    pct <= 10,
                )
            report.add(
                "(info) split of that overhead: superuser + Scope.tenant = ORM criteria only, no RLS "
                "(a superuser bypasses the policies)",
                "—",
                f"criteria only {(c['p50'] / b['p50'] - 1) * 100:+.1f} % at p50, "
                f"{(c['p95'] / b['p95'] - 1) * 100:+.1f} % at p95 ({c['p50']:.2f} / {c['p95']:.2f} ms); "
                f"so RLS adds {(a['p50'] / c['p50'] - 1) * 100:+.1f} % / "
                f"{(a['p95'] / c['p95'] - 1) * 100:+.1f} %",
                ov["load"],
            )
            log(f"app CPU per request, in-process ASGI calls ({args.ladder:,} each)")
            before = load()
            ladder = asyncio.run(
                inprocess_ladder(db_name, city, n=args.ladder, tmp=tmp, profile=args.profile or not quick)
            )
            loads = f"{before} → {load()}"
            log(f"app CPU per request: {json.dumps(ladder)}")
            for label, m in ladder.items():
                if label == "profile":
                    continue
                report.add(
                    f"(info) app-process CPU per request, in-process ASGI call, 1 at a time: {label}",
                    "≤ 1 ms for 1,000 req/s per process",
                    f"{m['cpu_ms']:.2f} ms CPU ({m['wall_ms']:.2f} ms wall) → ceiling ≈ "
                    f"{1000 / m['cpu_ms']:,.0f} req/s per process",
                    loads,
                )
            if "profile" in ladder:
                shares = ", ".join(f"{k} {v * 100:.0f} %" for k, v in ladder["profile"].items() if v >= 0.01)
                report.notes.append(
                    f"Where the CPU of GET /t/{{id}} goes (cProfile own time, in-process): {shares}"
                )

            for kind in ("granian", "uvicorn"):
                asyncio.run(serve_and_measure(kind, db_name, city, args, tmp, report))
        finally:
            redis_delete([f"portal_sessions:{sid}" for sid in ANONYMOUS_SESSIONS if sid])
            if db_name:
                _city.drop_database(db_name)
                log(f"dropped {db_name}")
    elapsed = time.perf_counter() - started
    title = "Tenancy benchmark" + (" (quick mode)" if quick else "")
    doc = "\n".join(
        [
            f"# {title}",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/tenancy.py"
            f"{' --quick' if quick else ''}` in {elapsed:.0f} s. How to read it: `bench/README.md`.",
            "",
            *env_lines,
            "",
            report.table(),
            "",
            *(f"- {n}" for n in report.notes),
            "",
        ]
    )
    print("\n" + doc)
    if write:
        RESULTS.write_text(doc)
        log(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(r.ok is not False for r in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
