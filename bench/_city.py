"""A throw-away PostgreSQL database in the production shape, filled with a generated city.

The database is made like ``tests/fixtures/databases.py`` does it: ``infra/postgres/roles.sql`` as the
superuser, ``CREATE DATABASE ... OWNER portal_owner``, migrations as ``portal_owner``; the app connects as
``portal_app`` (owns nothing, FORCE'd row-level security applies). The bench rows are written with Core
``insert()`` on a superuser connection (superusers bypass RLS): it is benchmark data, not demo data, and
the services would take minutes for 10,000 tenants.

Every generated string that identifies a tenant carries its six-digit number (code ``BT000042X``, name
``基准单位000042号``, address, member names, hazard titles, ledger summaries...), so a response can be scanned
for any tenant's data with one regular expression (:data:`TENANT_MARK`).

Each tenant also gets a year of history for its dashboard (the home page): it joined 40–900 days ago, has a
self-check for every month since (mostly signed on time, some late, unsigned or missed), a few hazards (open
ones of every age and severity, closed ones over the year) and, for a quarter of the tenants, open entries in
the accountability ledger. Without them the page's queries would read empty tables and its template would
render the empty states: cheaper than any real unit's page.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine
from uuid_utils.compat import uuid7

ROOT = Path(__file__).resolve().parents[1]
ROLES_SQL = ROOT / "infra" / "postgres" / "roles.sql"
PG_HOST, PG_PORT = "127.0.0.1", 5432

# Any of these followed by six digits names one tenant (or one of its people): the leak detector.
TENANT_MARK = re.compile(r"(?:BT|基准单位|Bench unit |基准路|成员|bt)(\d{6})")


def admin_dsn(db: str = "postgres") -> str:
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{db}"


def url(role: str, db: str) -> str:
    return f"postgresql+asyncpg://{role}@{PG_HOST}:{PG_PORT}/{db}"


@contextlib.asynccontextmanager
async def superuser(db: str = "postgres") -> AsyncIterator[asyncpg.Connection]:
    """A connection to ``db`` as the superuser (past RLS), closed on the way out."""
    conn = await asyncpg.connect(admin_dsn(db), timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


async def _admin(sql: str, db: str = "postgres") -> None:
    async with superuser(db) as conn:
        # Role DDL is cluster-wide: serialise with concurrent test sessions (same lock as the fixtures).
        await conn.execute("select pg_advisory_lock(724001)")
        try:
            await conn.execute(sql)
        finally:
            await conn.execute("select pg_advisory_unlock(724001)")


def create_database() -> str:
    """Roles, a fresh database owned by portal_owner, migrated as portal_owner. Returns its name."""
    from portal.core.migrate import upgrade

    name = f"portal_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(ROLES_SQL.read_text()))
    asyncio.run(_admin(f'CREATE DATABASE "{name}" OWNER portal_owner'))
    upgrade(url("portal_owner", name))
    return name


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def server_facts() -> dict[str, str]:
    async with superuser() as conn:
        version = await conn.fetchval("show server_version")
        max_conn = await conn.fetchval("show max_connections")
        shared = await conn.fetchval("show shared_buffers")
    return {"postgres": str(version), "max_connections": str(max_conn), "shared_buffers": str(shared)}


# -- the generated city --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    login: str
    display_name: str
    role: str


@dataclass
class BenchTenant:
    n: int  # the six-digit number in every string of this tenant
    id: uuid.UUID
    code: str
    name_zh: str
    members: list[Member] = field(default_factory=list)

    @property
    def manager(self) -> Member:
        return next(m for m in self.members if m.role == "manager")


@dataclass
class City:
    tenants: list[BenchTenant]
    users: int
    memberships: int
    jurisdictions: int
    seconds: float
    selfchecks: int = 0
    hazards: int = 0
    ledger_entries: int = 0
    by_number: dict[int, BenchTenant] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_number = {t.n: t for t in self.tenants}


def _uscc(n: int) -> str:
    """A valid 统一社会信用代码, unique per ``n`` (region 990103: the demo region)."""
    from portal.core.uscc import CHARSET, check_char, org_check_char

    digits = []
    for _ in range(7):
        n, r = divmod(n, 31)
        digits.append(CHARSET[r])
    org8 = "B" + "".join(reversed(digits))
    body17 = "91990103" + org8 + org_check_char(org8)
    return body17 + check_char(body17)


async def generate_city(db: str, tenants: int, *, seed: int = 7) -> City:
    """1 city, 10 districts, 100 streets (a committee and a grid each), ``tenants`` tenants, ~3 members
    each (1 responsible, 1 manager, 0-2 staff), one user per membership. Then ANALYZE."""
    from portal.models import metadata

    rnd = random.Random(seed)
    started = time.perf_counter()
    now = datetime.now(UTC)
    audit = {"created_at": now, "updated_at": now}
    t = metadata.tables
    jurisdictions: list[dict] = []
    committees: list[dict] = []
    grids: list[dict] = []
    city_id = uuid7()
    jurisdictions.append(
        {
            "id": city_id,
            "code": "BC99",
            "level": "city",
            "name_zh": "基准市",
            "name_en": "Bench City",
            "parent_id": None,
            "path": "BC99/",
            **audit,
        }
    )
    streets: list[tuple[uuid.UUID, str, uuid.UUID]] = []  # (street id, path, grid id)
    for d in range(1, 11):
        did, dcode = uuid7(), f"BC99D{d:02d}"
        dpath = f"BC99/{dcode}/"
        jurisdictions.append(
            {
                "id": did,
                "code": dcode,
                "level": "district",
                "name_zh": f"基准{d:02d}区",
                "name_en": f"District {d:02d}",
                "parent_id": city_id,
                "path": dpath,
                **audit,
            }
        )
        for s in range(1, 11):
            sid, scode = uuid7(), f"{dcode}S{s:02d}"
            spath = f"{dpath}{scode}/"
            jurisdictions.append(
                {
                    "id": sid,
                    "code": scode,
                    "level": "street",
                    "name_zh": f"基准{d:02d}区{s:02d}街道",
                    "name_en": f"Street {d:02d}-{s:02d}",
                    "parent_id": did,
                    "path": spath,
                    **audit,
                }
            )
            cid, gid = uuid7(), uuid7()
            committees.append(
                {
                    "id": cid,
                    "code": f"BCM{d:02d}{s:02d}",
                    "name_zh": f"基准{d:02d}{s:02d}社区",
                    "name_en": f"Committee {d:02d}-{s:02d}",
                    "jurisdiction_id": sid,
                    **audit,
                }
            )
            grids.append(
                {
                    "id": gid,
                    "code": f"BG{d:02d}{s:02d}",
                    "name_zh": f"基准{d:02d}{s:02d}网格",
                    "name_en": f"Grid {d:02d}-{s:02d}",
                    "committee_id": cid,
                    **audit,
                }
            )
            streets.append((sid, spath, gid))

    tenant_rows: list[dict] = []
    user_rows: list[dict] = []
    member_rows: list[dict] = []
    history = _History(now)
    out: list[BenchTenant] = []
    categories = ["key", "general", "general", "small_place", "small_place"]
    for n in range(1, tenants + 1):
        sid, spath, gid = streets[rnd.randrange(len(streets))]
        community = rnd.random() < 0.1
        tid = uuid7()
        code, name_zh = f"BT{n:06d}X", f"基准单位{n:06d}号"
        tenant_rows.append(
            {
                "id": tid,
                "code": code,
                "kind": "community" if community else "unit",
                "category": None if community else rnd.choice(categories),
                "subtype": None,
                "name_zh": name_zh,
                "name_en": f"Bench unit {n:06d}",
                "uscc": None if community else _uscc(n),
                "address": f"基准路{n:06d}号",
                "jurisdiction_id": sid,
                "jurisdiction_path": spath,
                "grid_id": gid,
                "premises": {},
                "active": True,
                "readiness": "ready",
                **audit,
                # Joined between 40 days and 2½ years ago: the dashboard's months and patrol windows are full
                # for most tenants, and some are new enough to show months from before they joined.
                "created_at": now - timedelta(days=rnd.randrange(40, 900)),
            }
        )
        bt = BenchTenant(n=n, id=tid, code=code, name_zh=name_zh)
        roles = ["responsible", "manager"] + ["staff"] * rnd.randrange(3)
        for k, role in enumerate(roles):
            uid = uuid7()
            login = f"bt{n:06d}.{role}{k}"
            display = f"成员{n:06d}-{k}"
            user_rows.append(
                {
                    "id": uid,
                    "login": login,
                    "display_name": display,
                    "email": None,
                    "locale": None,
                    "is_platform_admin": False,
                    "active": True,
                    **audit,
                }
            )
            member_rows.append({"id": uuid7(), "tenant_id": tid, "user_id": uid, "role": role, **audit})
            bt.members.append(Member(uid, login, display, role))
        history.add(rnd, n, tid, tenant_rows[-1]["created_at"], bt.manager.user_id)
        out.append(bt)

    engine = create_async_engine(url("postgres", db))
    try:
        async with engine.begin() as conn:
            for table, rows in (
                ("jurisdiction", jurisdictions),
                ("committee", committees),
                ("grid", grids),
                ("tenant", tenant_rows),
                ("user_account", user_rows),
                ("membership", member_rows),
                ("checklist", [history.checklist]),
                ("selfcheck", history.selfchecks),
                ("hazard", history.hazards),
                ("accountability_entry", history.ledger),
            ):
                for i in range(0, len(rows), 5000):
                    await conn.execute(insert(t[table]), rows[i : i + 5000])
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return City(
        tenants=out,
        users=len(user_rows),
        memberships=len(member_rows),
        jurisdictions=len(jurisdictions),
        seconds=time.perf_counter() - started,
        selfchecks=len(history.selfchecks),
        hazards=len(history.hazards),
        ledger_entries=len(history.ledger),
    )


class _History:
    """A year of a tenant's cycle as rows (self-checks, hazards, ledger entries), with the same rules for
    deadlines as the portal (:mod:`portal.selfcheck.deadlines`)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.audit = {"created_at": now, "updated_at": now}
        self.checklist = {
            "id": uuid7(),
            "code": "BENCH-M",
            "version": 1,
            "title_zh": "基准月度自查表",
            "title_en": "Bench monthly self-check",
            "performed_by": "unit",
            "frequency": "monthly",
            "applies_to": [],
            "status": "published",
            "published_at": now,
            "source_sha256": "0" * 64,
            **self.audit,
        }
        self.selfchecks: list[dict] = []
        self.hazards: list[dict] = []
        self.ledger: list[dict] = []

    def add(
        self, rnd: random.Random, n: int, tenant_id: uuid.UUID, joined: datetime, manager: uuid.UUID
    ) -> None:
        from portal.selfcheck.deadlines import hazard_deadline, period_of, previous_period, signing_deadline

        now = self.now
        current = period_of(now)
        period, first = current, period_of(joined)
        for _ in range(12):
            if period < first:
                break
            deadline = signing_deadline(period)
            row: dict[str, Any] = {
                "id": uuid7(),
                "tenant_id": tenant_id,
                "checklist_id": self.checklist["id"],
                "period": period,
                "deadline_at": deadline,
                "overdue_at": None,
                "started_at": None,
                "submitted_at": None,
                "submitted_by_id": None,
                "report_sha256": None,
                "signed_at": None,
                "signed_by_id": None,
                **self.audit,
            }
            draw = rnd.random()
            if deadline > now:  # still under way (this month; last month until the 5th)
                status = "due" if draw < 0.5 else "in_progress"
            elif draw < 0.05:
                status = ""  # never opened: a missed month
            elif draw < 0.75:
                status = "signed"  # on time
                row["submitted_at"] = deadline - timedelta(days=rnd.randrange(2, 12))
                row["signed_at"] = row["submitted_at"] + timedelta(hours=rnd.randrange(1, 24))
            elif draw < 0.85:
                status = "signed"  # late
                row["submitted_at"] = deadline - timedelta(days=rnd.randrange(0, 3))
                row["signed_at"] = deadline + timedelta(days=rnd.randrange(1, 6))
            elif draw < 0.92:
                status = "submitted"  # never signed
                row["submitted_at"] = deadline - timedelta(days=1)
                row["overdue_at"] = deadline + timedelta(minutes=10)
            else:
                status = "due"  # opened, never submitted
                row["overdue_at"] = deadline + timedelta(minutes=10)
            if status in ("submitted", "signed"):
                row["started_at"] = row["submitted_at"] - timedelta(hours=2)
                row["submitted_by_id"] = manager
                row["report_sha256"] = f"{n:064d}"
                row["signed_by_id"] = manager if status == "signed" else None
            elif status == "in_progress":
                row["started_at"] = now - timedelta(hours=rnd.randrange(1, 48))
            if status:
                self.selfchecks.append({**row, "status": status})
            period = previous_period(period)
        # 0–4 hazards: the older ones mostly closed (within a year), the recent ones open.
        for k in range(rnd.choice((0, 1, 1, 2, 2, 3, 4))):
            opened = now - timedelta(days=rnd.randrange(0, 330), hours=rnd.randrange(24))
            opened = max(opened, joined)
            major = rnd.random() < 0.15
            closed = None
            if now - opened > timedelta(days=45) and rnd.random() < 0.85:
                closed = min(opened + timedelta(days=rnd.randrange(1, 45)), now)
            self.hazards.append(
                {
                    "id": uuid7(),
                    "tenant_id": tenant_id,
                    "source": "selfcheck",
                    "title": f"基准单位{n:06d}号 隐患 {k}",
                    "severity": "major" if major else "general",
                    "status": "closed" if closed else rnd.choice(("open", "in_rectification")),
                    "deadline_at": hazard_deadline(opened, major),
                    "opened_at": opened,
                    "closed_at": closed,
                    "responsible_user_id": manager,
                    **self.audit,
                }
            )
        if rnd.random() < 0.25:  # a quarter of the tenants have open entries in their ledger
            for k in range(rnd.randrange(1, 4)):
                self.ledger.append(
                    {
                        "id": uuid7(),
                        "tenant_id": tenant_id,
                        "kind": rnd.choice(("overdue_selfcheck", "overdue_hazard")),
                        "subject_type": "hazard",
                        "subject_id": str(uuid7()),
                        "summary": f"基准单位{n:06d}号 逾期 {k}",
                        "attributed_user_id": manager,
                        "step": rnd.choice(("manager", "manager", "responsible", "warden")),
                        "opened_at": now - timedelta(days=rnd.randrange(1, 60)),
                        **self.audit,
                    }
                )
