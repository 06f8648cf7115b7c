"""The accountability ledger (自负) on both databases: lapses become one entry each, attributed and notified;
entries climb manager → responsible person → grid warden → regulator after the ladder's delays, notifying
each step exactly once; fixing the subject resolves the entry and stops the climb."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from portal.core.db import Database
from portal.core.outbox import OutboxMessage
from portal.core.scheduling import JOBS
from portal.core.tenancy import Scope
from portal.models.notify import Notification
from portal.models.selfcheck import (
    AccountabilityEntry,
    Answer,
    Hazard,
    HazardSource,
    LadderStep,
    LedgerKind,
    PatrolRound,
    SelfCheck,
    Severity,
)
from portal.models.tenants import MemberRole, Tenant
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.hazards.services import Action, OpenHazard, mark_overdue, open_hazard, transition
from portal.selfcheck.ledger import services as accountability
from portal.selfcheck.ledger.services import Ladder, RunResult
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.patrols import services as patrols
from portal.selfcheck.policies import ActorKind, HazardActor
from portal.tenants import services as ts
from tests.fixtures.factories import World
from tests.fixtures.web import sign_in
from tests.selfcheck.patrols.test_patrols import at, key_unit, log, member

T0 = datetime(2026, 12, 10, 1, 0, tzinfo=UTC)  # after the 2026-10 signing deadline (2026-11-05)
DAY = timedelta(days=1)


async def run(database: Database, tenant: Tenant, now: datetime, ladder: Ladder | None = None) -> RunResult:
    async with database.session(Scope.system("test ledger")) as s:
        return await accountability.run(
            s, now, ladder or accountability.DEFAULT_LADDER, tenant_ids=[tenant.id]
        )


async def entries(database: Database, tenant: Tenant) -> list[AccountabilityEntry]:
    async with database.session(Scope.tenant(tenant.id)) as s:
        rows = await s.execute(
            select(AccountabilityEntry)
            .where(AccountabilityEntry.tenant_id == tenant.id)
            .order_by(AccountabilityEntry.kind)
        )
        return list(rows.scalars())


async def inboxes(database: Database, tenant: Tenant) -> dict[uuid.UUID, list[str]]:
    """Who got which ledger notifications about this tenant (their dedup keys' step part)."""
    async with database.session(Scope.system("test read")) as s:
        rows = (
            await s.execute(
                select(Notification.user_id, Notification.dedup_key)
                .where(Notification.tenant_id == tenant.id, Notification.dedup_key.startswith("ledger:"))
                .order_by(Notification.created_at)
            )
        ).all()
    out: dict[uuid.UUID, list[str]] = {}
    for user_id, key in rows:
        out.setdefault(user_id, []).append(key.rsplit(":", 1)[1])
    return out


async def overdue_selfcheck(database: Database, tenant: Tenant) -> SelfCheck:
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
        t = await s.get(Tenant, tenant.id)
        sc = await sc_services.ensure_selfcheck(s, t, "2026-10")  # type: ignore[arg-type]
        assert sc is not None
        assert sc_services.mark_overdue(sc, sc.deadline_at + timedelta(seconds=1))
        return sc


async def test_overdue_selfcheck_climbs_the_ladder_once_per_step(database: Database, world: World) -> None:
    a = world.tenants["a"]
    manager, responsible = world.users["manager_a"].id, world.users["both"].id
    warden, regulator = world.users["warden"].id, world.users["regulator"].id
    sc = await overdue_selfcheck(database, a)
    assert await run(database, a, T0) == RunResult(opened=1, escalated=0, resolved=0)
    assert await run(database, a, T0 + timedelta(hours=2)) == RunResult(0, 0, 0)  # the job ran twice
    [entry] = await entries(database, a)
    assert (entry.kind, entry.subject_id, entry.summary) == (
        LedgerKind.OVERDUE_SELFCHECK,
        str(sc.id),
        "2026-10",
    )
    assert (
        entry.attributed_user_id == manager and entry.step is LadderStep.MANAGER and entry.resolved_at is None
    )
    assert await inboxes(database, a) == {manager: ["manager"]}

    expected = {manager: ["manager"]}
    for days, step, person in (
        (3, LadderStep.RESPONSIBLE, responsible),
        (7, LadderStep.WARDEN, warden),
        (14, LadderStep.REGULATOR, regulator),
    ):
        assert await run(database, a, T0 + days * DAY - timedelta(minutes=1)) == RunResult(0, 0, 0)  # not yet
        assert await run(database, a, T0 + days * DAY) == RunResult(0, 1, 0)
        assert await run(database, a, T0 + days * DAY + timedelta(hours=1)) == RunResult(
            0, 0, 0
        )  # no duplicate
        [entry] = await entries(database, a)
        assert entry.step is step and entry.escalated_at == T0 + days * DAY
        expected[person] = [step.value]
        assert await inboxes(database, a) == expected
    # One e-mail delivery row per notification.
    async with database.session(Scope.system("test read")) as s:
        ids = (await s.execute(select(Notification.id).where(Notification.tenant_id == a.id))).scalars().all()
        topics = (
            (
                await s.execute(
                    select(OutboxMessage.payload).where(
                        OutboxMessage.topic == "notify.deliver", OutboxMessage.tenant_id == a.id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(ids) == 4 and sorted(p["notification_id"] for p in topics) == sorted(str(i) for i in ids)

    # Signing the self-check resolves the entry.
    async with database.session(Scope.tenant(a.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        tenant = await s.get(Tenant, a.id)
        assert loaded is not None and tenant is not None
        for item in loaded.checklist.items:
            await sc_services.answer(s, loaded, item.code, Answer.NOT_APPLICABLE, user_id=manager)
        await sc_services.submit(s, loaded, tenant, user_id=manager)
        await sc_services.mark_signed(
            s, loaded, user_id=responsible, evidence={}, signed_sha256=loaded.report_sha256 or ""
        )
    assert await run(database, a, T0 + 15 * DAY) == RunResult(0, 0, 1)
    [entry] = await entries(database, a)
    assert entry.resolved_at == T0 + 15 * DAY and entry.step is LadderStep.REGULATOR
    assert await run(database, a, T0 + 40 * DAY) == RunResult(0, 0, 0)


async def test_overdue_hazard_is_attributed_and_closing_it_stops_the_climb(
    database: Database, world: World
) -> None:
    a = world.tenants["a"]
    manager, responsible = world.users["manager_a"].id, world.users["both"].id
    async with database.session(Scope.system("test")) as s:
        fixer = await ts.create_user(s, login=f"fixer.{uuid.uuid4().hex[:8]}", display_name="整改人")
        await ts.add_member(s, await s.get(Tenant, a.id), fixer, MemberRole.STAFF)  # type: ignore[arg-type]
    async with database.session(Scope.tenant(a.id)) as s:
        hazard = await open_hazard(
            s,
            a.id,
            OpenHazard(HazardSource.SELFCHECK, "灭火器过期", Severity.GENERAL, responsible_user_id=fixer.id),
            HazardActor(ActorKind.MEMBER, manager),
            now=T0 - 40 * DAY,
        )
        assert mark_overdue(hazard, T0)
    # Two ladders: a shorter one is just configuration.
    fast = Ladder(responsible_after_days=1, warden_after_days=2, regulator_after_days=3)
    assert await run(database, a, T0, fast) == RunResult(1, 0, 0)
    [entry] = await entries(database, a)
    assert (entry.kind, entry.subject_id, entry.attributed_user_id) == (
        LedgerKind.OVERDUE_HAZARD,
        str(hazard.id),
        fixer.id,
    )
    # The manager step tells the person who must fix it and the manager.
    assert await inboxes(database, a) == {fixer.id: ["manager"], manager: ["manager"]}
    async with database.session(Scope.tenant(a.id)) as s:
        h = await s.get(Hazard, hazard.id)
        boss = HazardActor(ActorKind.MEMBER, manager, can_verify=True)
        await transition(s, h, Action.START, boss)  # type: ignore[arg-type]
        await transition(s, h, Action.SUBMIT_FIX, boss, reason="已更换", evidence_ids=["photo"])  # type: ignore[arg-type]
        await transition(s, h, Action.VERIFY, boss)  # type: ignore[arg-type]
    # Closing the hazard resolved its entry at once; the next run has nothing left to resolve.
    [entry] = await entries(database, a)
    assert entry.resolved_at is not None and entry.step is LadderStep.MANAGER  # never climbed
    assert await run(database, a, T0 + 5 * DAY, fast) == RunResult(0, 0, 0)
    assert responsible not in await inboxes(database, a)


async def test_a_second_rejection_is_a_reopened_hazard(database: Database, world: World) -> None:
    b = world.tenants["b"]
    manager = world.users["manager_b"].id
    boss = HazardActor(ActorKind.MEMBER, manager, can_verify=True)
    async with database.session(Scope.tenant(b.id)) as s:
        hazard = await open_hazard(
            s,
            b.id,
            OpenHazard(HazardSource.WARDEN, "疏散通道堆物", Severity.GENERAL),
            HazardActor(ActorKind.WARDEN, None),
        )
        await transition(s, hazard, Action.START, boss)
        await transition(s, hazard, Action.SUBMIT_FIX, boss, reason="已清理", evidence_ids=["p1"])
        await transition(s, hazard, Action.REJECT, boss, reason="仍有堆物")
    assert await run(database, b, T0) == RunResult(0, 0, 0)  # rejected once: part of the normal cycle
    async with database.session(Scope.tenant(b.id)) as s:
        h = await s.get(Hazard, hazard.id)
        await transition(s, h, Action.SUBMIT_FIX, boss, reason="再次清理", evidence_ids=["p2"])  # type: ignore[arg-type]
        await transition(s, h, Action.REJECT, boss, reason="又堆上了")  # type: ignore[arg-type]
    assert await run(database, b, T0) == RunResult(1, 0, 0)
    assert await run(database, b, T0) == RunResult(0, 0, 0)
    [entry] = await entries(database, b)
    assert (entry.kind, entry.subject_id, entry.attributed_user_id) == (
        LedgerKind.REOPENED_HAZARD,
        str(hazard.id),
        manager,
    )


async def test_a_missed_patrol_day_and_patrols_resuming(database: Database, world: World) -> None:
    unit = await key_unit(database, world, {"workers": 120})
    manager = await member(database, unit, MemberRole.MANAGER)
    today = patrols.local_day(datetime.now(UTC))
    assert await run(database, unit, at(today + DAY, 9)) == RunResult(0, 0, 0)  # onboarding day never counts
    missed = today + DAY  # nobody patrolled
    assert await run(database, unit, at(missed + DAY, 3)) == RunResult(1, 0, 0)
    [entry] = await entries(database, unit)
    assert (entry.kind, entry.subject_id, entry.attributed_user_id) == (
        LedgerKind.MISSED_PATROL,
        missed.isoformat(),
        manager.id,
    )
    await log(database, unit, PatrolRound.DAILY, at(missed + DAY, 10))  # the next day is complete
    assert await run(database, unit, at(missed + 2 * DAY, 3)) == RunResult(0, 0, 1)
    assert len(await entries(database, unit)) == 1


async def test_ledger_page_access(client: AsyncTestClient, database: Database, world: World) -> None:
    a = world.tenants["a"]
    await overdue_selfcheck(database, a)
    await run(database, a, T0)
    client.cookies.set("lang", "en")
    for login, status in (
        (world.users["manager_a"].login, 200),
        (world.users["both"].login, 200),  # tenant a's responsible person
        (world.users["warden"].login, 200),  # warden of a's grid
        (world.users["regulator"].login, 200),  # regulator of a's district
        (world.users["manager_c"].login, 404),  # another tenant's manager
        (world.users["insurer"].login, 403),
    ):
        await sign_in(client, login)
        page = await client.get(f"/t/{a.id}/accountability/")
        assert page.status_code == status, login
        if status == 200:
            assert "Monthly self-check not signed by its deadline" in page.text and "2026-10" in page.text
            assert 'data-step="manager"' in page.text and "管理人a" in page.text
    await sign_in(client, world.users["warden"].login)
    assert (
        await client.get(f"/t/{world.tenants['c'].id}/accountability/")
    ).status_code == 404  # not its grid
    await sign_in(client, world.users["both"].login, ctx=f"member:{world.tenants['b'].id}")  # staff in b
    assert (await client.get(f"/t/{world.tenants['b'].id}/accountability/")).status_code == 403


async def test_the_daily_job_is_registered_and_claimed_once(database: Database, world: World) -> None:
    import portal.selfcheck.ledger.jobs  # noqa: F401  (registers the job, as worker.setup does)
    from worker.scheduler import run_claimed

    assert "selfcheck.accountability" in JOBS
    c = world.tenants["c"]
    await overdue_selfcheck(database, c)  # the 2026-10 deadline has passed by now
    key = f"test-{uuid.uuid4().hex[:8]}"
    assert await run_claimed(database, "selfcheck.accountability", key) is True
    assert await run_claimed(database, "selfcheck.accountability", key) is False
    [entry] = await entries(database, c)
    assert (
        entry.kind is LedgerKind.OVERDUE_SELFCHECK and entry.attributed_user_id == world.users["manager_c"].id
    )
    assert await inboxes(database, c) == {world.users["manager_c"].id: ["manager"]}
