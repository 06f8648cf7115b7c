"""The public board (reached by the QR code at the entrance, no sign-in) names exactly two people: the
responsible person and the manager. Staff, and anyone else on the roster, stay off it."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.tenants import MemberRole, Tenant
from portal.tenants import services as ts
from tests.fixtures.factories import World


async def test_the_board_names_the_responsible_person_and_the_manager_only(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    b = world.tenants["b"]
    async with database.session(Scope.system("test")) as s:
        tenant = await s.get(Tenant, b.id)
        assert tenant is not None
        boss = await ts.create_user(s, login=f"boss.{b.code}", display_name="责任人乙")
        await ts.add_member(s, tenant, boss, MemberRole.RESPONSIBLE)
        cleaner = await ts.create_user(s, login=f"cleaner.{b.code}", display_name="保洁员丙")
        await ts.add_member(s, tenant, cleaner, MemberRole.STAFF)
    client.cookies.clear()
    board = await client.get(f"/board/{b.id}")
    assert board.status_code == 200
    assert "责任人乙" in board.text and world.users["manager_b"].display_name in board.text
    # "both" is b's staff (and a's responsible person): on a's board, never on b's.
    for staff in ("保洁员丙", world.users["both"].display_name):
        assert staff not in board.text, staff
