"""A major hazard is reported at once to the grid's wardens and the jurisdiction's regulators (each in
their own language, once); a general hazard is not."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.identity import User
from portal.models.notify import Notification
from portal.models.selfcheck import HazardSource, Severity
from portal.selfcheck.hazards.services import OpenHazard, open_hazard
from portal.selfcheck.policies import ActorKind, HazardActor
from tests.fixtures.factories import World


async def _inbox(database: Database, user_id: uuid.UUID, hazard_id: uuid.UUID) -> list[Notification]:
    async with database.session(Scope.system("test: inbox")) as s:
        rows = await s.execute(
            select(Notification).where(
                Notification.user_id == user_id, Notification.dedup_key == f"major:{hazard_id}"
            )
        )
        return list(rows.scalars())


async def test_major_hazard_goes_to_warden_and_regulator(database: Database, world: World) -> None:
    a = world.tenants["a"]
    warden, regulator = world.users["warden"], world.users["regulator"]
    async with database.session(Scope.system("test: english regulator")) as s:
        reg = await s.get(User, regulator.id)
        assert reg is not None
        reg.locale = "en"
    async with database.session(Scope.tenant(a.id)) as s:
        major = await open_hazard(
            s,
            a.id,
            OpenHazard(HazardSource.SELFCHECK, "安全出口上锁", Severity.MAJOR, note="后门链锁"),
            HazardActor(ActorKind.MEMBER, world.users["manager_a"].id),
        )
        general = await open_hazard(
            s,
            a.id,
            OpenHazard(HazardSource.SELFCHECK, "灭火器过期", Severity.GENERAL),
            HazardActor(ActorKind.MEMBER, world.users["manager_a"].id),
        )
    [to_warden] = await _inbox(database, warden.id, major.id)
    assert "重大" in to_warden.title and a.name_zh in to_warden.title and "后门链锁" in to_warden.body
    assert to_warden.link == f"/t/{a.id}/hazards/{major.id}"
    [to_regulator] = await _inbox(database, regulator.id, major.id)
    assert to_regulator.title.startswith("Major hazard reported") and a.name_en in to_regulator.title
    assert await _inbox(database, warden.id, general.id) == []
    # Nobody inside the tenant is told this way (their own pages show it), and nobody twice.
    assert await _inbox(database, world.users["manager_a"].id, major.id) == []
