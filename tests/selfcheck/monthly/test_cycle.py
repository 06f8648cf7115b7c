"""The monthly cycle on both databases: self-check states, failed item → hazard, rectification events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.notify import Notification
from portal.models.selfcheck import Answer, Hazard, HazardEvent, HazardStatus, SelfCheck, SelfCheckStatus
from portal.models.tenants import Tenant
from portal.selfcheck.deadlines import period_of, signing_deadline
from portal.selfcheck.hazards.services import Action, HazardRefused, transition
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.policies import ActorKind, HazardActor
from tests.fixtures.factories import World
from tests.selfcheck.cycle import open_selfcheck
from tests.selfcheck.photos import attach_photo

PERIOD = "2026-10"


async def _selfcheck(database: Database, world: World, key: str = "a") -> tuple[SelfCheck, Tenant]:
    return await open_selfcheck(database, world.tenants[key], PERIOD)


async def test_one_selfcheck_per_tenant_and_period(database: Database, world: World) -> None:
    first, tenant = await _selfcheck(database, world)
    second, _t = await _selfcheck(database, world)
    assert first.id == second.id and first.status is SelfCheckStatus.DUE
    assert first.deadline_at == signing_deadline(PERIOD)
    async with database.session(Scope.tenant(tenant.id)) as s:
        count = (
            await s.execute(
                select(func.count())
                .select_from(SelfCheck)
                .where(SelfCheck.tenant_id == tenant.id, SelfCheck.period == PERIOD)
            )
        ).scalar_one()
    assert count == 1


async def test_full_cycle_with_a_failed_item(database: Database, world: World) -> None:
    sc, tenant = await _selfcheck(database, world)
    manager = world.users["manager_a"].id
    responsible = world.users["both"].id  # "both" is tenant a's responsible person
    async with database.session(Scope.tenant(tenant.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None
        items = loaded.checklist.items
        with pytest.raises(sc_services.SelfCheckRefused, match="unknown_item"):
            await sc_services.answer(s, loaded, "NOPE-01", Answer.PASS, user_id=manager)
        with pytest.raises(sc_services.SelfCheckRefused, match="fail_needs_note"):
            await sc_services.answer(s, loaded, items[0].code, Answer.FAIL, user_id=manager)
        await sc_services.answer(
            s, loaded, items[0].code, Answer.FAIL, user_id=manager, note="两具灭火器压力不足"
        )
        assert loaded.status is SelfCheckStatus.IN_PROGRESS
        with pytest.raises(sc_services.SelfCheckRefused, match="incomplete"):
            await sc_services.submit(s, loaded, tenant, user_id=manager)
        for item in items[1:]:
            await sc_services.answer(s, loaded, item.code, Answer.PASS, user_id=manager)
        assert sc_services.progress(loaded).complete and sc_services.progress(loaded).failed == 1
        hazards = await sc_services.submit(s, loaded, tenant, user_id=manager)
        assert len(hazards) == 1 and loaded.report_sha256
        with pytest.raises(sc_services.SelfCheckRefused, match="already_submitted"):
            await sc_services.answer(s, loaded, items[1].code, Answer.FAIL, user_id=manager, note="x")
        with pytest.raises(sc_services.SelfCheckRefused, match="only_responsible_signs"):
            await sc_services.mark_signed(
                s, loaded, user_id=manager, evidence={}, signed_sha256=loaded.report_sha256 or ""
            )
        with pytest.raises(sc_services.SelfCheckRefused, match="report_changed"):
            await sc_services.mark_signed(s, loaded, user_id=responsible, evidence={}, signed_sha256="0" * 64)
        await sc_services.mark_signed(
            s, loaded, user_id=responsible, evidence={}, signed_sha256=loaded.report_sha256 or ""
        )
        assert loaded.status is SelfCheckStatus.SIGNED
        hazard = await s.get(Hazard, hazards[0])
        assert hazard is not None and hazard.item_code == items[0].code
        assert hazard.reason_zh == items[0].why_zh and hazard.how_to_fix_zh == items[0].how_to_fix_zh
        assert hazard.status is HazardStatus.OPEN and hazard.note == "两具灭火器压力不足"
        # Titled by what was found, not by the requirement (which says how things should be).
        assert hazard.title == "两具灭火器压力不足" != items[0].text_zh
        assert hazard.deadline_at > datetime.now(UTC) + timedelta(days=29)

        staff = HazardActor(ActorKind.MEMBER, manager)
        boss = HazardActor(ActorKind.MEMBER, manager, can_verify=True)
        await transition(s, hazard, Action.START, staff)
        await transition(s, hazard, Action.SUBMIT_FIX, staff, reason="已更换", evidence_ids=["after-photo"])
        await transition(s, hazard, Action.REJECT, boss, reason="照片看不清压力表")
        await transition(
            s, hazard, Action.SUBMIT_FIX, staff, reason="重新拍照", evidence_ids=["after-photo-2"]
        )
        await transition(s, hazard, Action.VERIFY, boss)
        assert hazard.status is HazardStatus.CLOSED and hazard.rejections == 1 and hazard.closed_at
    async with database.session(Scope.tenant(tenant.id)) as s:
        events = (
            await s.execute(
                select(HazardEvent.action, HazardEvent.from_status, HazardEvent.to_status)
                .where(HazardEvent.hazard_id == hazards[0])
                .order_by(HazardEvent.at)
            )
        ).all()
    assert [e[0] for e in events] == ["open", "start", "submit_fix", "reject", "submit_fix", "verify"]
    assert events[-1][2] is HazardStatus.CLOSED
    # Told, each in their inbox: the responsible person that the report waits for their signature, and
    # (as one who may verify) of each submitted fix; the manager, who did both, of neither.
    async with database.session(Scope.system("test")) as s:
        kinds = (
            await s.execute(
                select(Notification.user_id, Notification.kind).where(Notification.tenant_id == tenant.id)
            )
        ).all()
    told = {who: sorted(k for u, k in kinds if u == who) for who in (responsible, manager)}
    assert told[responsible] == ["hazard.verify", "hazard.verify", "selfcheck.sign"]
    assert told[manager] == []


async def test_major_hazard_cannot_be_closed_from_inside(
    database: Database, settings: Settings, world: World
) -> None:
    sc, tenant = await _selfcheck(database, world, "b")
    manager = world.users["manager_b"].id
    async with database.session(Scope.tenant(tenant.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None
        major = next(i for i in loaded.checklist.items if i.severity.value == "major")
        for item in loaded.checklist.items:
            if item.code == major.code:
                failed = await sc_services.answer(
                    s, loaded, item.code, Answer.FAIL, user_id=manager, note="安全出口上锁"
                )
            else:
                await sc_services.answer(s, loaded, item.code, Answer.NOT_APPLICABLE, user_id=manager)
    await attach_photo(database, settings, tenant.id, failed.id, manager)
    async with database.session(Scope.tenant(tenant.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None
        [hazard_id] = await sc_services.submit(s, loaded, tenant, user_id=manager)
        hazard = await s.get(Hazard, hazard_id)
        assert hazard is not None
        assert hazard.deadline_at < datetime.now(UTC) + timedelta(days=8)  # majors get days, not a month
        boss = HazardActor(ActorKind.MEMBER, None, can_verify=True)
        await transition(s, hazard, Action.START, boss)
        await transition(s, hazard, Action.SUBMIT_FIX, boss, reason="已开锁", evidence_ids=["p"])
        with pytest.raises(HazardRefused, match="major_needs_outside_verifier"):
            await transition(s, hazard, Action.VERIFY, boss)
        assert hazard.status is HazardStatus.AWAITING_VERIFICATION
    # The grid warden verifies it under the warden's scope.
    async with database.session(Scope.grids([world.grids["b"].id])) as s:
        hazard = await s.get(Hazard, hazard_id)
        assert hazard is not None
        await transition(s, hazard, Action.VERIFY, HazardActor(ActorKind.WARDEN, world.users["warden"].id))
        assert hazard.status is HazardStatus.CLOSED


async def test_overdue_flag_and_past_deadline(database: Database, world: World) -> None:
    sc, tenant = await _selfcheck(database, world, "c")
    later = sc.deadline_at + timedelta(seconds=1)
    assert sc_services.mark_overdue(sc, sc.deadline_at) is False
    assert sc_services.mark_overdue(sc, later) is True and sc.overdue_at == later
    assert sc_services.mark_overdue(sc, later) is False  # set once
    assert period_of(datetime(2026, 10, 31, 17, 0, tzinfo=UTC)) == "2026-11"  # already November in Shanghai
    from portal.models.selfcheck import HazardSource, Severity
    from portal.selfcheck.hazards.services import OpenHazard, open_hazard

    with pytest.raises(HazardRefused, match="deadline_in_past"):
        async with database.session(Scope.tenant(tenant.id)) as s:
            await open_hazard(
                s,
                tenant.id,
                OpenHazard(
                    HazardSource.REGULATOR,
                    "堵塞",
                    Severity.GENERAL,
                    deadline_at=datetime.now(UTC) - timedelta(days=1),
                ),
                HazardActor(ActorKind.REGULATOR, None),
            )


def test_a_hazard_title_is_the_first_line_of_the_finding_shortened_to_fit_a_list() -> None:
    assert sc_services.finding_title("  消防通道堆放纸箱\n共三处，已拍照 ") == "消防通道堆放纸箱"
    long = "疏散" * 40
    title = sc_services.finding_title(long)
    assert len(title) == sc_services.TITLE_LENGTH and title.endswith("…") and long.startswith(title[:-1])
