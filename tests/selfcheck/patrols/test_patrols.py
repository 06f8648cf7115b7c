"""Daily patrols (防火巡查) of key units on both databases: the rounds a day requires, missed days, a failed
item opening a hazard with the item's guidance, the phone form over HTTP, and non-key tenants refused."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from portal.core import clock
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.identity import User
from portal.models.selfcheck import Answer, Hazard, HazardSource, Patrol, PatrolRound
from portal.models.tenants import Jurisdiction, MemberRole, Tenant, TenantKind, UnitCategory
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.patrols import services as patrols
from portal.selfcheck.patrols.services import ItemResult, PatrolRefused, required_rounds
from portal.tenants import services as ts
from tests.fixtures.factories import World, unique_uscc
from tests.fixtures.web import post_form, sign_in

DAY = date(2026, 11, 23)
HOSPITAL = {"beds": 1200, "night_patrol": True}  # T01
MALL = {"public_gathering_place": True, "opening_hours": "10:00-22:00"}  # T02
HOTEL = {"public_gathering_place": True, "opening_hours": "00:00-24:00", "night_patrol": True}  # T03
KTV = {"public_gathering_place": True, "opening_hours": "18:00-02:00"}  # T07
PLAIN = {"workers": 280}  # T08, a labour-intensive factory: the daily round only


def _unit(premises: dict[str, Any], category: UnitCategory = UnitCategory.KEY) -> Tenant:
    return Tenant(kind=TenantKind.UNIT, category=category, premises=premises)


def _hours(tenant: Tenant, day: date = DAY) -> list[tuple[str, str]]:
    return [(r.value, start.strftime("%H:%M")) for r, start in required_rounds(tenant, day)]


@pytest.mark.parametrize(
    ("premises", "expected"),
    [
        (PLAIN, [("daily", "00:00")]),
        (
            HOSPITAL,
            [
                ("daily", "00:00"),
                ("night", "00:00"),
                ("night", "02:00"),
                ("night", "04:00"),
                ("night", "22:00"),
            ],
        ),
        (
            MALL,
            [("daily", "00:00")]
            + [("opening", f"{h:02d}:00") for h in range(10, 22, 2)]
            + [("closing", "22:00")],
        ),
        (  # open past midnight: the 00:00 round and the closing check belong to the day they happen on
            KTV,
            [("daily", "00:00"), ("opening", "00:00"), ("closing", "02:00")]
            + [("opening", f"{h:02d}:00") for h in (18, 20, 22)],
        ),
        (  # never closes; its 2-hourly rounds already walk the place at night
            HOTEL,
            [("daily", "00:00")] + [("opening", f"{h:02d}:00") for h in range(0, 24, 2)],
        ),
    ],
    ids=["plain-key-unit", "hospital", "mall", "ktv", "hotel"],
)
def test_required_rounds_for_the_demo_kinds(
    premises: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    tenant = _unit(premises)
    assert _hours(tenant) == expected
    assert all(start.tzinfo is not None and start.date() == DAY for _r, start in required_rounds(tenant, DAY))


def test_no_rounds_for_other_tenants_and_unreadable_hours() -> None:
    assert required_rounds(_unit(HOSPITAL, UnitCategory.GENERAL), DAY) == []
    assert required_rounds(Tenant(kind=TenantKind.COMMUNITY, category=None, premises=HOSPITAL), DAY) == []
    assert not patrols.patrols_required(_unit({}, UnitCategory.SMALL_PLACE))
    # A gathering place whose hours cannot be read still owes its daily round (and a log line says why).
    assert _hours(_unit({"public_gathering_place": True, "opening_hours": "late"})) == [("daily", "00:00")]


async def key_unit(database: Database, world: World, premises: dict[str, Any], key: str = "a") -> Tenant:
    """A key unit in the street and grid of the world's tenant ``key``, with a manager and a responsible
    person."""
    base = world.tenants[key]
    tag = uuid.uuid4().hex[:8]
    async with database.session(Scope.system("test key unit")) as s:
        await catalogue.load_catalogue(s)
        street = await s.get(Jurisdiction, base.jurisdiction_id)
        assert street is not None
        tenant = await ts.register_tenant(
            s,
            code=f"K{tag}",
            kind=TenantKind.UNIT,
            category=UnitCategory.KEY,
            name_zh=f"重点单位{tag}",
            name_en=f"Key unit {tag}",
            address="测试路2号",
            jurisdiction=street,
            uscc=unique_uscc(),
            grid_id=base.grid_id,
            premises=premises,
        )
        for role in (MemberRole.MANAGER, MemberRole.RESPONSIBLE):
            user = await ts.create_user(s, login=f"{role.value}.{tag}", display_name=f"{role.value}{tag}")
            await ts.add_member(s, tenant, user, role)
            world.users[f"{role.value}_{tag}"] = user
    return tenant


async def member(database: Database, tenant: Tenant, role: MemberRole) -> User:
    async with database.session(Scope.tenant(tenant.id)) as s:
        ms = await ts.roster(s, tenant.id)
        user = await s.get(User, next(m.user_id for m in ms if m.role is role))
    assert user is not None
    return user


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), clock.zone()).astimezone(UTC)


async def log(
    database: Database,
    tenant: Tenant,
    round_: PatrolRound,
    when: datetime,
    results: dict[str, ItemResult] | None = None,
) -> tuple[Patrol, list[uuid.UUID]]:
    async with database.session(Scope.tenant(tenant.id)) as s:
        t = await s.get(Tenant, tenant.id)
        assert t is not None
        return await patrols.log_patrol(s, t, round_, results or {}, user_id=None, now=when)


async def test_a_full_day_is_not_missed_and_one_missing_night_round_is(
    database: Database, world: World
) -> None:
    hospital = await key_unit(database, world, HOSPITAL)
    first = patrols.local_day(datetime.now(UTC)) + timedelta(days=1)
    second = first + timedelta(days=1)
    for day in (first, second):
        await log(database, hospital, PatrolRound.DAILY, at(day, 9, 30))
        for hour in (0, 2, 4, 22):
            if day == second and hour == 2:
                continue  # the 02:00 night round of the second day is never walked
            await log(database, hospital, PatrolRound.NIGHT, at(day, hour, 40))
    # The third day's 02:00 round covers that day's slot only: not the second day's, nor a daily round.
    await log(database, hospital, PatrolRound.NIGHT, at(second + timedelta(days=1), 2, 10))
    async with database.session(Scope.tenant(hospital.id)) as s:
        t = await s.get(Tenant, hospital.id)
        assert t is not None
        assert await patrols.missed_days(s, t, first, first) == []
        assert await patrols.missed_days(s, t, first, second) == [second]
        third = second + timedelta(days=1)
        assert await patrols.missed_days(s, t, first, third) == [second, third]  # day 3: no daily round
        record = (await patrols.records(s, t, second, second))[0]
        assert [(slot.round.value, p is not None) for slot, p in record.rounds] == [
            ("daily", True),
            ("night", True),
            ("night", False),
            ("night", True),
            ("night", True),
        ]
        assert await patrols.streak(s, t, first) == 1
        assert (
            await patrols.streak(s, t, second) == 1
        )  # the second day is still under way: count from the first
        assert await patrols.streak(s, t, third) == 0


async def test_a_round_outside_its_window_is_refused(database: Database, world: World) -> None:
    mall = await key_unit(database, world, MALL)
    day = patrols.local_day(datetime.now(UTC)) + timedelta(days=1)
    with pytest.raises(PatrolRefused, match="round_not_due"):
        await log(database, mall, PatrolRound.OPENING, at(day, 8, 0))  # not open yet
    with pytest.raises(PatrolRefused, match="round_not_due"):
        await log(database, mall, PatrolRound.NIGHT, at(day, 23, 0))  # no night rounds for a mall
    patrol, _h = await log(database, mall, PatrolRound.CLOSING, at(day, 22, 45))
    assert patrol.day == day.isoformat() and patrol.round is PatrolRound.CLOSING and patrol.findings == 0
    assert set(patrol.results) == {f"KEY-P-{n:02d}" for n in range(1, 15)}
    assert all(r == {"answer": "pass", "note": ""} for r in patrol.results.values())


async def test_a_failed_item_opens_a_hazard_with_the_items_guidance(database: Database, world: World) -> None:
    unit = await key_unit(database, world, PLAIN)
    when = datetime.now(UTC)
    with pytest.raises(PatrolRefused) as refused:
        await log(database, unit, PatrolRound.DAILY, when, {"KEY-P-03": ItemResult(Answer.FAIL)})
    assert refused.value.code == "item_problems" and refused.value.items == {"KEY-P-03": "fail_needs_note"}
    patrol, [hazard_id] = await log(
        database,
        unit,
        PatrolRound.DAILY,
        when,
        {"KEY-P-01": ItemResult(Answer.PASS), "KEY-P-03": ItemResult(Answer.FAIL, "东侧安全出口被纸箱堵住")},
    )
    assert patrol.findings == 1 and patrol.results["KEY-P-03"] == {
        "answer": "fail",
        "note": "东侧安全出口被纸箱堵住",
    }
    async with database.session(Scope.tenant(unit.id)) as s:
        hazard = await s.get(Hazard, hazard_id)
        item = next(
            i
            for i in (await catalogue.checklist_for(s, unit, frequency="daily")).items
            if i.code == "KEY-P-03"
        )  # type: ignore[union-attr]
    assert hazard is not None and hazard.source is HazardSource.PATROL and hazard.tenant_id == unit.id
    assert hazard.item_code == "KEY-P-03" and hazard.note == "东侧安全出口被纸箱堵住"
    assert hazard.reason_zh == item.why_zh and hazard.how_to_fix_zh == item.how_to_fix_zh
    assert hazard.severity.value == item.severity.value == "major"  # KEY-P-03 exits: life-critical


async def test_non_key_tenant_is_refused(client: AsyncTestClient, database: Database, world: World) -> None:
    a = world.tenants["a"]  # a general unit
    async with database.session(Scope.tenant(a.id)) as s:
        t = await s.get(Tenant, a.id)
        assert t is not None
        with pytest.raises(PatrolRefused, match="not_required"):
            await patrols.log_patrol(s, t, PatrolRound.DAILY, {}, user_id=None)
        assert await patrols.missed_days(s, t, DAY, DAY + timedelta(days=3)) == []
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["manager_a"].login)
    listing = await client.get(f"/t/{a.id}/patrols/")
    assert listing.status_code == 200 and "key fire-safety units only" in listing.text
    form = await client.get(f"/t/{a.id}/patrols/new")
    assert (
        form.status_code == 200
        and "key fire-safety units only" in form.text
        and "answer-KEY-P-01" not in form.text
    )
    refused = await post_form(client, f"/t/{a.id}/patrols/", {"round": "daily"})
    assert refused.status_code == 422 and "key fire-safety units only" in refused.text
    async with database.session(Scope.tenant(a.id)) as s:
        count = (
            await s.execute(select(func.count()).select_from(Patrol).where(Patrol.tenant_id == a.id))
        ).scalar_one()
    assert count == 0


async def test_phone_form_over_http(client: AsyncTestClient, database: Database, world: World) -> None:
    unit = await key_unit(database, world, PLAIN)
    manager = await member(database, unit, MemberRole.MANAGER)
    client.cookies.set("lang", "en")
    await sign_in(client, manager.login)
    empty_log = await client.get(f"/t/{unit.id}/patrols/")
    assert empty_log.status_code == 200 and "0 days in a row complete" in empty_log.text
    form = await client.get(f"/t/{unit.id}/patrols/new")
    assert form.status_code == 200 and form.text.count('value="pass" checked') == 14
    assert 'name="round" value="daily"' in form.text
    no_note = await post_form(
        client, f"/t/{unit.id}/patrols/", {"round": "daily", "answer-KEY-P-02": "fail", "note-KEY-P-02": " "}
    )
    assert no_note.status_code == 422 and 'id="error-KEY-P-02"' in no_note.text
    assert (
        "Say what is wrong" in no_note.text and "How to fix it" in no_note.text
    )  # the item's guidance shows
    saved = await post_form(
        client,
        f"/t/{unit.id}/patrols/",
        {"round": "daily", "answer-KEY-P-02": "fail", "note-KEY-P-02": "配电间插排串接"},
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"/t/{unit.id}/patrols/"
    logged = await client.get(f"/t/{unit.id}/patrols/")
    today = patrols.local_day(datetime.now(UTC)).isoformat()
    assert logged.status_code == 200 and f'id="day-{today}"' in logged.text and "1 finding" in logged.text
    assert "complete" in logged.text
    async with database.session(Scope.tenant(unit.id)) as s:
        hazards = (await s.execute(select(Hazard).where(Hazard.tenant_id == unit.id))).scalars().all()
    assert [(h.source, h.item_code, h.note) for h in hazards] == [
        (HazardSource.PATROL, "KEY-P-02", "配电间插排串接")
    ]
    # Another tenant's patrols are a 404, not a 403.
    assert (await client.get(f"/t/{world.tenants['c'].id}/patrols/")).status_code == 404
    # The grid warden reads the log but does not log rounds.
    await sign_in(client, world.users["warden"].login)
    assert (await client.get(f"/t/{unit.id}/patrols/")).status_code == 200
    assert (await client.get(f"/t/{unit.id}/patrols/new")).status_code == 403
