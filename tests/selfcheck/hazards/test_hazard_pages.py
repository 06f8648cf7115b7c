"""Hazard pages over HTTP: who sees them, steps with refusals in place, foreign hazards 404."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.selfcheck import Hazard, HazardSource, HazardStatus, Severity
from portal.selfcheck.hazards.services import OpenHazard, open_hazard
from portal.selfcheck.policies import ActorKind, HazardActor
from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in


async def _hazard(
    database: Database, world: World, key: str, severity: Severity = Severity.GENERAL
) -> Hazard:
    tenant = world.tenants[key]
    async with database.session(Scope.tenant(tenant.id)) as s:
        return await open_hazard(
            s,
            tenant.id,
            OpenHazard(HazardSource.REGULATOR, "疏散通道堆放纸箱", severity, note="二楼东侧"),
            HazardActor(ActorKind.REGULATOR, None),
        )


async def test_member_walks_a_hazard_and_is_stopped_without_a_photo(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    hazard = await _hazard(database, world, "a")
    await sign_in(client, world.users["manager_a"].login)
    listing = await client.get(f"/t/{a.id}/hazards/")
    assert listing.status_code == 200 and "疏散通道堆放纸箱" in listing.text
    detail = await client.get(f"/t/{a.id}/hazards/{hazard.id}")
    assert detail.status_code == 200 and "二楼东侧" in detail.text and "开始整改" in detail.text
    started = await post_form(client, f"/t/{a.id}/hazards/{hazard.id}/actions/start", {})
    assert started.status_code == 303
    no_photo = await post_form(
        client, f"/t/{a.id}/hazards/{hazard.id}/actions/submit_fix", {"reason": "已清理"}
    )
    assert no_photo.status_code == 422 and "请先上传整改结果的照片" in no_photo.text
    async with database.session(Scope.tenant(a.id)) as s:
        assert (await s.get(Hazard, hazard.id)).status is HazardStatus.IN_RECTIFICATION  # type: ignore[union-attr]
    bogus = await post_form(client, f"/t/{a.id}/hazards/{hazard.id}/actions/explode", {})
    assert bogus.status_code == 404


async def test_foreign_and_insurer_get_404(client: AsyncTestClient, database: Database, world: World) -> None:
    hazard_c = await _hazard(database, world, "c")
    await sign_in(client, world.users["manager_a"].login)
    assert (await client.get(f"/t/{world.tenants['a'].id}/hazards/{hazard_c.id}")).status_code == 404
    assert (await client.get(f"/t/{world.tenants['c'].id}/hazards/{hazard_c.id}")).status_code == 404
    await sign_in(client, world.users["insurer"].login)  # consented to by tenant c, but never sees hazards
    assert (await client.get(f"/t/{world.tenants['c'].id}/hazards/")).status_code == 403
    async with database.session(Scope.tenant(world.tenants["c"].id)) as s:
        rows = (await s.execute(select(Hazard.status).where(Hazard.id == hazard_c.id))).scalars().all()
    assert rows == [HazardStatus.OPEN]


async def test_regulator_sees_the_subtree_hazard(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    hazard = await _hazard(database, world, "b", Severity.MAJOR)
    await sign_in(client, world.users["regulator"].login)
    page = await client.get(f"/t/{world.tenants['b'].id}/hazards/{hazard.id}")
    assert page.status_code == 200 and "疑似重大火灾隐患" in page.text


async def test_closed_hazards_age_into_the_evidence_retention_rule(database: Database, world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from portal.selfcheck.evidence_owners import hazards_closed_before

    closed = await _hazard(database, world, "a")
    still_open = await _hazard(database, world, "a")
    async with database.session(Scope.tenant(world.tenants["a"].id)) as s:
        row = await s.get(Hazard, closed.id)
        assert row is not None
        row.status, row.closed_at = HazardStatus.CLOSED, datetime.now(UTC) - timedelta(days=4 * 365)
    async with database.session(Scope.system("test")) as s:
        ids = set(await hazards_closed_before(s, datetime.now(UTC) - timedelta(days=3 * 365)))
    assert closed.id in ids and still_open.id not in ids


async def test_manager_names_who_rectifies_and_refusals_change_nothing(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    from portal.models.notify import Notification
    from portal.models.selfcheck import HazardEvent
    from tests.fixtures.factories import add_access_people
    from tests.identity.helpers import page_text, zh

    await add_access_people(database, world)
    a = world.tenants["a"]
    staff = world.users["staff_a"]
    hazard = await _hazard(database, world, "a")
    url = f"/t/{a.id}/hazards/{hazard.id}/assign"

    await sign_in(client, staff.login)  # staff may not name anyone
    refused = await post_form(client, url, {"user_id": str(staff.id)})
    assert refused.status_code == 422 and zh(
        "Only the manager or the responsible person names who rectifies a hazard."
    ) in page_text(refused)

    await sign_in(client, world.users["manager_a"].login)
    page = await client.get(f"/t/{a.id}/hazards/{hazard.id}")
    assert zh("Nobody named yet: the manager answers for it.") in page_text(page)
    for bad in (str(world.users["manager_b"].id), "not-a-uuid"):  # someone of another unit; garbage
        refused = await post_form(client, url, {"user_id": bad})
        assert refused.status_code == 422 and zh("Choose one of the unit's people.") in page_text(refused)
    async with database.session(Scope.tenant(a.id)) as s:
        assert (await s.get(Hazard, hazard.id)).responsible_user_id is None  # type: ignore[union-attr]

    named = await post_form(client, url, {"user_id": str(staff.id)})
    assert named.status_code == 303
    page = await client.get(f"/t/{a.id}/hazards/{hazard.id}")
    assert staff.display_name in page_text(page) and zh("person named to rectify it") in page_text(page)
    async with database.session(Scope.tenant(a.id)) as s:
        assert (await s.get(Hazard, hazard.id)).responsible_user_id == staff.id  # type: ignore[union-attr]
        events = (await s.execute(select(HazardEvent.action).where(HazardEvent.hazard_id == hazard.id))).all()
        assert [e[0] for e in events].count("assign") == 1
    async with database.session(Scope.system("test: inbox")) as s:
        told = (
            (
                await s.execute(
                    select(Notification).where(
                        Notification.user_id == staff.id, Notification.kind == "hazard.assigned"
                    )
                )
            )
            .scalars()
            .all()
        )
        assert len(told) == 1 and "疏散通道堆放纸箱" in told[0].title
    # Another tenant's hazard: 404, as ever.
    other = await _hazard(database, world, "c")
    assert (
        await post_form(client, f"/t/{a.id}/hazards/{other.id}/assign", {"user_id": str(staff.id)})
    ).status_code == 404
