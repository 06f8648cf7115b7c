"""The public board (reached by the QR code at the entrance, no sign-in) names exactly two people: the
responsible person and the manager. Staff, and anyone else on the roster, stay off it."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from portal.core.db import Database
from portal.models.tenants import MemberRole
from tests.fixtures.factories import World, add_person


async def test_the_board_names_the_responsible_person_and_the_manager_only(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    b = world.tenants["b"]
    await add_person(database, b.id, MemberRole.RESPONSIBLE, "责任人乙")
    await add_person(database, b.id, MemberRole.STAFF, "保洁员丙")
    client.cookies.clear()
    board = await client.get(f"/board/{b.id}")
    assert board.status_code == 200
    assert "责任人乙" in board.text and world.users["manager_b"].display_name in board.text
    # "both" is b's staff (and a's responsible person): on a's board, never on b's.
    for staff in ("保洁员丙", world.users["both"].display_name):
        assert staff not in board.text, staff
