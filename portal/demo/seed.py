"""``portal demo``: seed 示例市 from ``data/demo-city.yaml`` through the real services.

Extensible on purpose: later issues add steps (checklists, months of self-checks...) to :data:`STEPS`;
each step gets the :class:`DemoCity` built so far.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.config import Settings
from portal.core import outbox
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.grid import services as grid_services
from portal.insurer import services as insurer_services
from portal.models.grid import Committee, Grid
from portal.models.identity import User
from portal.models.insurer import ConsentScope, Insurer
from portal.models.tenants import (
    Jurisdiction,
    JurisdictionLevel,
    MemberRole,
    Tenant,
    TenantKind,
    UnitCategory,
)
from portal.tenants import services as tenant_services

log = structlog.get_logger("portal.demo")

DATA = Path(__file__).resolve().parent / "data" / "demo-city.yaml"


@dataclass
class DemoCity:
    raw: dict[str, Any]
    jurisdictions: dict[str, Jurisdiction] = field(default_factory=dict)
    committees: dict[str, Committee] = field(default_factory=dict)
    grids: dict[str, Grid] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    insurers: dict[str, Insurer] = field(default_factory=dict)


Step = Callable[[AsyncSession, DemoCity], Awaitable[None]]


def load_city(path: Path = DATA) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
        return data


async def _user(
    session: AsyncSession, city: DemoCity, person: dict[str, Any], *, admin: bool = False
) -> User:
    login = person["login"]
    if login not in city.users:
        city.users[login] = await tenant_services.create_user(
            session,
            login=login,
            display_name=person["name"],
            email=person.get("email"),
            is_platform_admin=admin,
        )
    return city.users[login]


async def seed_geography(session: AsyncSession, city: DemoCity) -> None:
    c = city.raw["city"]
    root = await tenant_services.add_jurisdiction(
        session,
        code=c["code"],
        level=JurisdictionLevel.CITY,
        name_zh=c["name"]["zh"],
        name_en=c["name"]["en"],
        parent=None,
    )
    city.jurisdictions[c["code"]] = root
    for d in c["districts"]:
        district = await tenant_services.add_jurisdiction(
            session,
            code=d["code"],
            level=JurisdictionLevel.DISTRICT,
            name_zh=d["name"]["zh"],
            name_en=d["name"]["en"],
            parent=root,
        )
        city.jurisdictions[d["code"]] = district
        for s in d.get("streets", []):
            street = await tenant_services.add_jurisdiction(
                session,
                code=s["code"],
                level=JurisdictionLevel.STREET,
                name_zh=s["name"]["zh"],
                name_en=s["name"]["en"],
                parent=district,
            )
            city.jurisdictions[s["code"]] = street
            for cm in s.get("committees", []):
                committee = await grid_services.add_committee(
                    session,
                    code=cm["code"],
                    name_zh=cm["name"]["zh"],
                    name_en=cm["name"]["en"],
                    street=street,
                )
                city.committees[cm["code"]] = committee
                for person in cm.get("staff", []):
                    await grid_services.add_committee_staff(
                        session, committee, await _user(session, city, person)
                    )
                for g in cm.get("grids", []):
                    grid = await grid_services.add_grid(
                        session,
                        committee=committee,
                        code=g["code"],
                        name_zh=g["name"]["zh"],
                        name_en=g["name"]["en"],
                    )
                    city.grids[g["code"]] = grid
                    for person in g.get("wardens", []):
                        await grid_services.assign_warden(session, grid, await _user(session, city, person))


async def seed_tenants(session: AsyncSession, city: DemoCity) -> None:
    for t in city.raw["tenants"]:
        tenant = await tenant_services.register_tenant(
            session,
            code=t["code"],
            kind=TenantKind(t["kind"]),
            category=UnitCategory(t["category"]) if t.get("category") else None,
            subtype=t.get("subtype"),
            name_zh=t["name"]["zh"],
            name_en=t["name"]["en"],
            address=t["address"],
            jurisdiction=city.jurisdictions[t["jurisdiction"]],
            uscc=t.get("uscc"),
            grid_id=city.grids[t["grid"]].id if t.get("grid") else None,
            premises=t.get("premises") or {},
        )
        city.tenants[t["code"]] = tenant
        members = t.get("members") or {}
        for role in (MemberRole.RESPONSIBLE, MemberRole.MANAGER):
            if members.get(role.value):
                user = await _user(session, city, members[role.value])
                await tenant_services.add_member(session, tenant, user, role)
        for person in members.get("staff") or []:
            await tenant_services.add_member(
                session, tenant, await _user(session, city, person), MemberRole.STAFF
            )


async def seed_oversight(session: AsyncSession, city: DemoCity) -> None:
    for org in city.raw.get("regulators", []):
        for person in org["users"]:
            await tenant_services.assign_regulator(
                session,
                await _user(session, city, person),
                city.jurisdictions[org["jurisdiction"]],
                org_name_zh=org["org"]["zh"],
                org_name_en=org["org"]["en"],
            )
    for ins in city.raw.get("insurers", []):
        insurer = await insurer_services.add_insurer(
            session,
            code=ins["code"],
            name_zh=ins["name"]["zh"],
            name_en=ins["name"]["en"],
            uscc=ins.get("uscc"),
        )
        city.insurers[ins["code"]] = insurer
        for person in ins.get("users", []):
            await insurer_services.add_insurer_user(session, insurer, await _user(session, city, person))
        for consent in ins.get("consents", []):
            await insurer_services.grant_consent(
                session, city.tenants[consent["tenant"]], insurer, ConsentScope(consent["scope"])
            )
    for person in city.raw.get("platform_admins", []):
        await _user(session, city, person, admin=True)


async def seed_cycle(session: AsyncSession, city: DemoCity) -> None:
    """The checklist catalogue, and this month's self-check for every tenant (earlier months are due only for
    a tenant that had joined by then: the history's units, back-dated)."""
    from datetime import UTC, datetime

    from portal.selfcheck.checklists.services import load_catalogue
    from portal.selfcheck.deadlines import period_of
    from portal.selfcheck.monthly.jobs import open_periods

    await load_catalogue(session)
    await open_periods(session, period_of(datetime.now(UTC)))


async def seed_history(session: AsyncSession, city: DemoCity) -> None:
    """Six months of self-checks, hazards, patrols and ledger entries, replayed through the services."""
    from portal.demo.history import seed_history as replay

    await replay(session, city)


STEPS: list[Step] = [seed_geography, seed_tenants, seed_oversight, seed_cycle, seed_history]


async def seed_into(session: AsyncSession, raw: dict[str, Any] | None = None) -> DemoCity:
    city = DemoCity(raw or load_city())
    for step in STEPS:
        await step(session, city)
    return city


async def _deliver_backlog(db: Database) -> int:
    """Run what seeding left in the outbox (notifications' e-mails, photos' thumbnails) now, so that
    ``portal serve`` starts with nothing to catch up on: the thumbnails are there at first sight, and the
    sign-in guide is not buried under a backlog's log lines."""
    backlog: list[uuid.UUID] = []
    await outbox.sweep(db, stale_after=timedelta(0), send=backlog.append, limit=1_000_000)
    for message_id in backlog:
        try:
            await outbox.process(db, message_id)
        except Exception as exc:
            log.warning("demo_backlog_deferred", message_id=str(message_id), error=str(exc))
    return len(backlog)


async def seed_demo(settings: Settings, *, if_empty: bool = False) -> str:
    db = Database(settings)
    try:
        async with db.session(Scope.system("demo seed")) as session:
            count = (await session.execute(select(func.count()).select_from(Tenant))).scalar_one()
            if count and if_empty:
                return f"demo city already present ({count} tenants); nothing seeded"
            if count:
                return f"the database already has {count} tenants; refusing to seed the demo city twice"
            city = await seed_into(session)
        await _deliver_backlog(db)
        return (
            f"seeded 示例市: {len(city.jurisdictions)} jurisdictions, {len(city.committees)} committees, "
            f"{len(city.grids)} grids, {len(city.tenants)} tenants, {len(city.users)} people"
        )
    finally:
        await db.dispose()
