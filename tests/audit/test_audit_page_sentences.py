"""The audit page reads as sentences in the page's language: no raw action ids, no ``key: value`` detail,
no Python lists, and long hashes shortened with the whole value there to copy and for screen readers.

Each kind of detail the portal records is on the page: a regulator's read of the ledger (made through the
page itself), and entries with the shapes the services record (a submitted and a signed report, an
accountability entry, a photo, a role change, a hazard's step, a patrol).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from html.parser import HTMLParser
from typing import Any

from litestar.testing import AsyncTestClient

from portal.audit import services as audit
from portal.core.db import Database
from portal.core.tenancy import Scope
from tests.fixtures.factories import World
from tests.fixtures.web import sign_in

HEX64 = re.compile(r"[0-9a-f]{64}")
REPORT = hashlib.sha256(b"the frozen report").hexdigest()
KEY = hashlib.sha256(b"the passkey's public key").hexdigest()
PHOTO = hashlib.sha256(b"a photo").hexdigest()
HAZARDS = [str(uuid.uuid4()) for _ in range(3)]


class VisibleText(HTMLParser):
    """The text a sighted reader sees: no tags or attributes, no scripts, nothing hidden (visually hidden
    text, and the copy buttons a browser without the clipboard never shows)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden_depth = 0  # > 0 inside an element that is not shown

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        hidden = "hidden" in attributes or "visually-hidden" in (attributes.get("class") or "").split()
        if self.hidden_depth or tag in ("script", "style") or hidden:
            self.hidden_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.hidden_depth:
            self.hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


ENTRIES: list[tuple[str, dict[str, Any]]] = [
    ("selfcheck.submitted", {"period": "2026-10", "sha256": REPORT, "hazards": HAZARDS}),
    (
        "selfcheck.signed",
        {
            "period": "2026-10",
            "sha256": REPORT,
            "signature": {
                "sha256": REPORT,
                "signer_id": str(uuid.uuid4()),
                "signer_name": "责任人甲",
                "signed_at": "2026-11-02T09:00:00+08:00",
                "passkey_id": str(uuid.uuid4()),
                "credential_id": "q3Xw-credential-id-in-base64url-that-is-long",
                "key_sha256": KEY,
                "registration": {"seq": 4, "hash": hashlib.sha256(b"registration").hexdigest()},
            },
        },
    ),
    (
        "accountability.opened",
        {"kind": "overdue_selfcheck", "subject": str(uuid.uuid4()), "attributed": str(uuid.uuid4())},
    ),
    (
        "evidence.added",
        {
            "owner_type": "hazard",
            "owner_id": str(uuid.uuid4()),
            "sha256": PHOTO,
            "size": 1_234_567,
            "media_type": "image/jpeg",
            "deduplicated": False,
        },
    ),
    (
        "member.role_changed",
        {"user_id": str(uuid.uuid4()), "display_name": "员工乙", "from": "staff", "to": "manager"},
    ),
    ("hazard.verify", {"from": "awaiting_verification", "to": "closed"}),
    ("patrol.logged", {"round": "daily", "day": "2026-11-01", "findings": 0, "hazards": []}),
]


async def _record_entries(database: Database, tenant_id: uuid.UUID) -> None:
    async with database.session(Scope.tenant(tenant_id)) as s:
        for action, detail in ENTRIES:
            await audit.record(s, action, tenant_id=tenant_id, detail=detail)


async def _audit_page(client: AsyncTestClient, world: World, lang: str) -> str:
    a = world.tenants["a"]
    await sign_in(client, world.users["regulator"].login)
    assert (await client.get(f"/t/{a.id}/accountability/")).status_code == 200  # leaves its read
    await sign_in(client, world.users["manager_a"].login)
    client.cookies.set("lang", lang)
    response = await client.get(f"/t/{a.id}/audit")
    assert response.status_code == 200, response.text
    return response.text


def _assert_no_raw_record(html: str) -> str:
    text = visible(html)
    raw_record = ("as:", "kind:", "via:", "page:", "deduplicated", "['", "{'")
    raw_record += ("selfcheck.signed", "tenant.read")
    for raw in raw_record:
        assert raw not in text, raw
    assert not HEX64.search(text), HEX64.search(text)
    assert "<code" not in html
    for uid in HAZARDS:
        assert uid not in text
    return text


async def test_entries_read_as_english_sentences(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    await _record_entries(database, world.tenants["a"].id)
    html = await _audit_page(client, world, "en")
    text = _assert_no_raw_record(html)
    assert "Unit viewed from outside" in text
    assert "read as regulator · viewed the accountability ledger · on the web pages" in text
    assert "month 2026-10 · 3 hazards opened" in text
    assert "signed by 责任人甲" in text
    assert "Monthly self-check not signed by its deadline" in text
    assert "attached to a hazard" in text and "type JPEG · size 1.2 MB" in text
    assert "员工乙 · from staff to manager" not in text  # the change comes first: what happened, then to whom
    assert "from staff to manager · 员工乙" in text
    assert "from awaiting verification to closed" in text
    assert "Daily round · patrol day 2026-11-01" in text and "found wrong" not in text
    # Long hashes: shortened to the eye, whole in the tooltip, to copy and for screen readers.
    for whole in (REPORT, KEY, PHOTO):
        short = f"{whole[:12]}…{whole[-4:]}"
        assert short in text
        assert f'data-copy="{whole}"' in html and f'title="{whole}"' in html
        assert f'<span class="visually-hidden">{whole}</span>' in html
    assert html.count('class="copy"') >= 4 and "hidden>Copy" in html
    assert '<script src="/static/js/copy.js" defer></script>' in html


async def test_entries_read_as_chinese_sentences(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    await _record_entries(database, world.tenants["a"].id)
    text = _assert_no_raw_record(await _audit_page(client, world, "zh_CN"))
    assert "以监管人员身份查看 · 查看了责任台账 · 通过网页" in text
    assert "由员工改为消防安全管理人" in text and "由待验收改为已销号" in text
    assert "月份 2026-10 · 新开 3 项隐患" in text and "签署人 责任人甲" in text
    assert "月度自查逾期未签署" in text and "附于隐患 · 编号" in text and "类型 JPEG · 大小 1.2 MB" in text
    for english in ("read as", "hazards opened", "from staff", "fingerprint", "Other event"):
        assert english not in text
