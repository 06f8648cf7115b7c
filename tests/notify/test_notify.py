"""Notifications on both databases: deduplicated inbox rows with one delivery row each, the inbox pages
(one's own messages only, mark read with htmx, pagination, unread count), and e-mail delivery through a real
SMTP server (aiosmtpd on 127.0.0.1) with a Chinese subject and body."""

from __future__ import annotations

import email
import uuid
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from portal.config import SettingsError, load_settings
from portal.core import outbox
from portal.core.db import Database
from portal.core.outbox import OutboxMessage
from portal.core.tenancy import Scope
from portal.models.identity import User
from portal.models.notify import Notification
from portal.notify import senders, services
from tests.fixtures.factories import World
from tests.fixtures.services import free_port
from tests.fixtures.web import csrf_token, sign_in

HX = {"HX-Request": "true"}


async def _notify(
    database: Database, user_ids: list[uuid.UUID], key: str, title: str = "隐患逾期"
) -> list[uuid.UUID]:
    async with database.session(Scope.system("test notify")) as s:
        return await services.notify(s, user_ids, "test", title, "正文：请尽快整改。", "/inbox", key)


async def _deliveries(database: Database, ids: list[uuid.UUID]) -> list[OutboxMessage]:
    async with database.session(Scope.system("test read")) as s:
        rows = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.topic == services.DELIVER_TOPIC))
        ).scalars()
        return [m for m in rows if m.payload.get("notification_id") in {str(i) for i in ids}]


async def test_a_key_notifies_each_person_once(database: Database, world: World) -> None:
    a, b = world.users["manager_a"].id, world.users["manager_b"].id
    key = f"test:{uuid.uuid4().hex}"
    first = await _notify(database, [a, b, a], key)
    again = await _notify(database, [a, b], key)
    assert len(first) == 2 and again == []
    assert len(await _deliveries(database, first)) == 2  # one e-mail delivery per message, not per run
    async with database.session(Scope.system("test read")) as s:
        assert await services.unread_count(s, a) >= 1
        rows = (await s.execute(select(Notification).where(Notification.dedup_key == key))).scalars().all()
    assert sorted(r.user_id for r in rows) == sorted([a, b]) and all(r.read_at is None for r in rows)


async def test_inbox_shows_only_ones_own_and_marks_read(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    me, other = world.users["manager_a"].id, world.users["manager_b"].id
    tag = uuid.uuid4().hex[:8]
    [mine] = await _notify(database, [me], f"t:{tag}:1", title=f"我的消息{tag}")
    [theirs] = await _notify(database, [other], f"t:{tag}:2", title=f"别人的消息{tag}")
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["manager_a"].login)
    inbox = await client.get("/inbox/")
    assert (
        inbox.status_code == 200 and f"我的消息{tag}" in inbox.text and f"别人的消息{tag}" not in inbox.text
    )
    assert 'id="unread-count"' in inbox.text and "1 unread" in inbox.text and "new" in inbox.text
    token = await csrf_token(client)
    foreign = await client.post(f"/inbox/{theirs}/read", headers={**HX, "x-csrftoken": token})
    assert foreign.status_code == 404
    missing = await client.post(f"/inbox/{uuid.uuid4()}/read", headers={**HX, "x-csrftoken": token})
    assert missing.status_code == 404
    read = await client.post(f"/inbox/{mine}/read", headers={**HX, "x-csrftoken": token})
    assert read.status_code == 200 and "<html" not in read.text and f'id="note-{mine}"' in read.text
    assert 'hx-swap-oob="true"' in read.text and "all read" in read.text and "Mark read" not in read.text
    badge = await client.get("/inbox/unread")
    assert badge.status_code == 200 and "all read" in badge.text
    async with database.session(Scope.system("test read")) as s:
        assert await services.unread_count(s, me) == 0
        assert await services.unread_count(s, other) == 1
        assert (await s.get(Notification, theirs)).read_at is None  # type: ignore[union-attr]
    # Plain form posts (no htmx) land back on the inbox.
    [later] = await _notify(database, [me], f"t:{tag}:3")
    plain = await client.post(f"/inbox/{later}/read", headers={"x-csrftoken": token})
    assert plain.status_code == 303 and plain.headers["location"] == "/inbox"


async def test_inbox_pages_newest_first(client: AsyncTestClient, database: Database, world: World) -> None:
    me = world.users["manager_c"].id
    tag = uuid.uuid4().hex[:8]
    for n in range(services.PAGE_SIZE + 3):
        await _notify(database, [me], f"p:{tag}:{n}", title=f"消息{n:02d}-{tag}")
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["manager_c"].login)
    first = await client.get("/inbox/")
    assert first.status_code == 200 and "Page 1 of 2" in first.text
    assert first.text.index(f"消息22-{tag}") < first.text.index(f"消息21-{tag}")  # newest first
    assert f"消息02-{tag}" not in first.text
    second = await client.get("/inbox/?page=2", headers=HX)
    assert second.status_code == 200 and "<html" not in second.text and f"消息00-{tag}" in second.text
    async with database.session(Scope.system("test read")) as s:
        assert await services.unread_count(s, me) == services.PAGE_SIZE + 3
    token = await csrf_token(client)
    assert (await client.post("/inbox/read-all", headers={"x-csrftoken": token})).status_code == 303
    async with database.session(Scope.system("test read")) as s:
        assert await services.unread_count(s, me) == 0
    await client.post("/signout", headers={"x-csrftoken": token})
    client.cookies.clear()
    assert (await client.get("/inbox/")).status_code in (302, 303)  # signed out: to the sign-in page


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
        senders.use_sender(None)


def test_smtp_sender_speaks_to_a_real_server(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    sender = senders.SmtpSender.from_url(f"smtp://127.0.0.1:{port}?from=portal@example.org")
    assert (sender.host, sender.port, sender.starttls, sender.from_addr) == (
        "127.0.0.1",
        port,
        False,
        "portal@example.org",
    )
    sender.send("负责人 <boss@example.org>", "隐患逾期：锦程大酒店", "东侧安全出口被堵，请当天整改。\n第二行")
    [msg] = inbox.messages
    assert msg["Subject"] == "隐患逾期：锦程大酒店" and msg["From"] == "portal@example.org"
    assert inbox.envelopes[0].rcpt_tos == ["boss@example.org"]
    body = msg.get_body(("plain",))
    assert (
        body is not None
        and body.get_content().replace("\r\n", "\n") == "东侧安全出口被堵，请当天整改。\n第二行\n"
    )


def test_sender_choice_and_settings() -> None:
    assert isinstance(senders.sender_for(None), senders.LogSender)
    parsed = senders.SmtpSender.from_url(
        "smtp://us%40er:p%40ss@mail.example.org:587?starttls=1&from=portal@example.org"
    )
    assert (parsed.username, parsed.password, parsed.port, parsed.starttls) == ("us@er", "p@ss", 587, True)
    assert senders.SmtpSender.from_url("smtps://mail.example.org").port == 465
    assert load_settings(smtp_url="smtp://mail.example.org:25").smtp_url == "smtp://mail.example.org:25"
    with pytest.raises(SettingsError, match="PORTAL_SMTP_URL"):
        load_settings(smtp_url="http://mail.example.org")


async def test_outbox_delivers_by_email_to_people_with_an_address(
    database: Database, world: World, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    senders.use_sender(senders.SmtpSender.from_url(f"smtp://127.0.0.1:{port}?from=portal@example.org"))
    with_address, without = world.users["manager_a"], world.users["manager_b"]
    async with database.session(Scope.system("test")) as s:
        user = await s.get(User, with_address.id)
        assert user is not None
        user.email = f"manager.{uuid.uuid4().hex[:6]}@example.org"
        address = user.email
    outbox.set_dispatcher(None)  # no broker here: the rows wait for this test to process them
    ids = await _notify(
        database, [with_address.id, without.id], f"mail:{uuid.uuid4().hex}", title="自查逾期未签署"
    )
    for msg in await _deliveries(database, ids):
        assert await outbox.process(database, msg.id) == "done"
        assert await outbox.process(database, msg.id) == "skipped"  # a duplicate delivery sends nothing
    [msg] = inbox.messages  # the person without an address gets the inbox message only
    assert msg["To"] == address and msg["Subject"] == "自查逾期未签署"
    assert "正文：请尽快整改。" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "/inbox" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
