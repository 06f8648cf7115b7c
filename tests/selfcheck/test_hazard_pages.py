"""Hazard pages over HTTP: who sees them, steps with refusals in place, foreign hazards 404."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.selfcheck.hazards import ActorKind, HazardActor, OpenHazard, open_hazard
from portal.selfcheck.models import Hazard, HazardSource, HazardStatus
from portal.selfcheck.schemas import Severity
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
