"""The isolation probe of ``bench/tenancy.py``: random (principal, object) requests across tenants over HTTP,
while transactions are made to fail mid-way on the web process's pooled connections, injected from outside
(see bench/README.md, step 4)."""

from __future__ import annotations

import asyncio
import random
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _city
import _load
from _web import Principal


@dataclass
class ProbeCounts:
    requests: int = 0
    own_200: int = 0
    foreign_404: int = 0
    searches_clean: int = 0
    failures_500: int = 0
    leaks: int = 0
    unexpected: int = 0
    examples: list[str] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)  # statements cancelled / connections ended


# Failures mid-transaction on pooled connections, injected from outside the app: while the probe runs, a
# superuser connection cancels the statement that one of the web process's connections is running
# (``pg_cancel_backend``: the transaction is aborted, the request answers 500, the connection goes back to
# the pool and serves the next request) and, one time in ten, ends such a connection instead
# (``pg_terminate_backend``: the pool must notice and replace it). Both hit requests of every kind at
# whatever point they are, including between the scope's set_config and the page's queries. (The probe
# used to send requests that failed by themselves, a NUL byte in a search and an offset past bigint; the
# portal answers those cleanly now.)
CANCEL_EVERY_S = (0.01, 0.04)


async def fail_transactions(db: str, stop: asyncio.Event, seed: int) -> dict[str, int]:
    """Cancel or end the app role's active statements at random moments until ``stop``; counts of each."""
    rnd = random.Random(seed)
    done = {"cancelled": 0, "terminated": 0}
    async with _city.superuser(db) as conn:
        while not stop.is_set():
            await asyncio.sleep(rnd.uniform(*CANCEL_EVERY_S))
            how = "terminate" if rnd.random() < 0.1 else "cancel"
            hit = await conn.fetchval(
                f"select count(*) filter (where pg_{how}_backend(pid)) from ("
                "  select pid from pg_stat_activity where usename = 'portal_app' and state = 'active'"
                "  and pid <> pg_backend_pid() order by random() limit 1) one"
            )
            done["terminated" if how == "terminate" else "cancelled"] += int(hit or 0)
    return done


async def isolation_probe(
    port: int, db: str, city: _city.City, principals: list[Principal], *, requests: int, seed: int
) -> ProbeCounts:
    rnd = random.Random(seed)
    specs: list[tuple[str, Principal, int | None, str]] = []  # (kind, principal, target number, path)
    for i in range(requests):
        p = rnd.choice(principals)
        if rnd.random() < 0.3:
            target = p.tenant
        else:
            target = rnd.choice(city.tenants)
            while target.n == p.tenant.n:
                target = rnd.choice(city.tenants)
        path = f"/t/{target.id}" if rnd.random() < 0.5 else f"/api/v1/tenants/{target.id}"
        specs.append(("object", p, target.n, path))
        if i % 25 == 24:  # searches: a foreign tenant's number (must find nothing), and everything
            other = rnd.choice(city.tenants)
            q = f"{other.n:06d}" if other.n != p.tenant.n else "基准单位"
            specs.append(("search", p, None, "/tenants?q=" + urllib.parse.quote(q)))
    counts = ProbeCounts()
    queue = iter(specs)

    def note(msg: str) -> None:
        if len(counts.examples) < 10:
            counts.examples.append(msg)

    async def worker() -> None:
        conn = _load.Connection(port, timeout=30)
        try:
            for kind, p, target, path in queue:
                resp = await conn.request("GET", path, {"Cookie": p.cookie, "Accept": "text/html"})
                counts.requests += 1
                body = resp.body.decode("utf-8", errors="replace")
                marks = {int(x) for x in _city.TENANT_MARK.findall(body)}
                foreign = marks - {p.tenant.n}
                if foreign:
                    counts.leaks += 1
                    note(f"LEAK {path} as {p.member.login}: {resp.status}, tenants {sorted(foreign)[:5]}")
                if resp.status == 500:  # failed mid-transaction (fail_transactions): no data, no leak
                    counts.failures_500 += 1
                elif kind == "search":
                    if resp.status == 200 and not foreign:
                        counts.searches_clean += 1
                    elif resp.status != 200:
                        counts.unexpected += 1
                        note(f"search {path} answered {resp.status}")
                elif target == p.tenant.n:
                    if resp.status == 200 and p.tenant.n in marks:
                        counts.own_200 += 1
                    else:
                        counts.unexpected += 1
                        note(f"own {path} as {p.member.login} answered {resp.status}")
                elif resp.status == 404:
                    counts.foreign_404 += 1
                else:
                    counts.unexpected += 1
                    if resp.status == 200:
                        counts.leaks += 1
                    note(f"foreign {path} as {p.member.login} answered {resp.status}")
        finally:
            await conn.close()

    stop = asyncio.Event()
    failing = asyncio.create_task(fail_transactions(db, stop, seed))
    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(8))), timeout=600)
    finally:
        stop.set()
        counts.injected = await failing
    return counts


def failure_kinds(log_text: str) -> dict[str, int]:
    """Which exceptions the server logged for the injected failures (proof that they really failed)."""
    kinds = {}
    for name in (
        "QueryCanceledError",
        "ConnectionDoesNotExistError",
        "AdminShutdownError",
        "InterfaceError",
        "ConnectionResetError",
    ):
        n = log_text.count(f"{name}:")
        if n:
            kinds[name] = n
    return kinds
