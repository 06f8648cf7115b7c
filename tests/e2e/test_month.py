"""A whole month's cycle on phones, in Chromium (the issue's end-to-end test).

The manager of a general unit answers this month's self-check with one failed item and submits it; the
hazard appears with its reason and how to fix it; a staff member, on their own phone, starts the
rectification, photographs the fix and asks for verification; the manager verifies and closes it; the
responsible person adds a passkey (a virtual platform authenticator) and signs the report with it; the PDF
downloads; and `portal verify-report` confirms the signature against the stored report. Every page visited
is checked with axe.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import PHONE, new_context
from tests.e2e.test_passkeys import demo_sign_in, with_authenticator
from tests.evidence import images
from tests.identity.helpers import zh

pytestmark = pytest.mark.e2e

UNIT = "临江顺达物流有限公司"  # T11, a general unit of the demo city
MANAGER = ("雷浩", "t11.manager")
STAFF = ("朱继红", "t11.staff1")
RESPONSIBLE = ("侯立新", "t11.responsible")
FAULT = "灭火器压力表指针在红区"
SELFCHECK_URL = re.compile(r"/t/[0-9a-f-]{36}/selfchecks/([0-9a-f-]{36})$")
HAZARD_URL = re.compile(r"/t/[0-9a-f-]{36}/hazards/[0-9a-f-]{36}$")


async def answer_all(page: Page) -> str:
    """Answer every item: pass, except the first one that needs no photo, which fails with a note.
    Returns the failed item's text."""
    items = page.locator("article.item")
    count = await items.count()
    failed_text = ""
    for i in range(count):
        item = items.nth(i)
        needs_photo = await item.get_by_text(zh("photo if it fails")).count() > 0
        if not failed_text and not needs_photo:
            await item.get_by_label(zh("Fail"), exact=True).check()
            await expect(items.nth(i).get_by_role("alert")).to_be_visible()  # a fail needs a note
            await items.nth(i).get_by_role("textbox").first.fill(FAULT)
            await items.nth(i).get_by_role("textbox").first.blur()
            await expect(items.nth(i).get_by_role("heading", name=zh("How to fix it"))).to_be_visible()
            failed_text = (await items.nth(i).locator("legend").inner_text()).split(" ", 1)[1].split("\n")[0]
        else:
            await item.get_by_label(zh("Pass"), exact=True).check()
        await expect(page.locator("#selfcheck-progress")).to_contain_text(f"已回答 {i + 1} 项")
    return failed_text.strip()


async def test_a_month_on_a_phone(
    browser: Browser,
    portal_server: str,
    portal_command: dict[str, Any],
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    manager_ctx = await new_context(browser, portal_server, PHONE)
    staff_ctx = await new_context(browser, portal_server, PHONE)
    responsible_ctx = await new_context(browser, portal_server, PHONE)
    try:
        # 1. The manager answers this month's self-check with one failed item and submits it.
        manager = await manager_ctx.new_page()
        await demo_sign_in(manager, *MANAGER)
        await manager.get_by_role("link", name=zh("Monthly self-checks")).first.click()
        await assert_accessible(manager)
        await manager.locator("main a[href*='/selfchecks/']").first.click()
        await expect(manager).to_have_url(SELFCHECK_URL)
        selfcheck_id = SELFCHECK_URL.search(manager.url).group(1)  # type: ignore[union-attr]
        await answer_all(manager)
        await assert_accessible(manager)
        await manager.get_by_label(zh("I checked every item on site.")).check()
        await manager.get_by_role("button", name=zh("Submit the self-check")).click()
        await expect(manager.get_by_text(zh("submitted, awaiting signature")).first).to_be_visible()
        await assert_accessible(manager)

        # 2. The hazard is there, titled by what was found, with why it fails and how to fix it.
        await manager.goto(manager.url.split("/selfchecks/")[0] + "/hazards/")
        await assert_accessible(manager)
        await manager.get_by_role("link", name=FAULT).first.click()
        await expect(manager).to_have_url(HAZARD_URL)
        hazard_url = manager.url
        await expect(manager.get_by_role("heading", name=zh("How to fix it"))).to_be_visible()
        await expect(manager.get_by_text(FAULT, exact=True)).to_be_visible()
        await assert_accessible(manager)

        # 3. A staff member rectifies it with a photo, on their own phone.
        staff = await staff_ctx.new_page()
        await demo_sign_in(staff, *STAFF)
        await staff.goto(hazard_url)
        await staff.get_by_role("button", name=zh("Start rectification")).click()
        await expect(
            staff.get_by_role("button", name=zh("Ask for verification (with photo)"))
        ).to_be_visible()
        photo = tmp_path / "换新灭火器.jpg"
        photo.write_bytes(images.jpeg(1600, 1200, seed=7))
        await staff.locator("[data-evidence-input]").set_input_files(str(photo))
        await expect(staff.locator(".ev-gallery img")).to_have_count(1, timeout=20_000)
        await staff.get_by_label(zh("What was done")).fill("已更换为压力正常的新灭火器")
        await staff.get_by_role("button", name=zh("Ask for verification (with photo)")).click()
        await expect(staff.get_by_role("button", name=zh("Ask for verification (with photo)"))).to_have_count(
            0
        )
        await assert_accessible(staff)

        # 4. The manager verifies and closes it.
        await manager.goto(hazard_url)
        await manager.get_by_role("button", name=zh("Verified: close the hazard")).click()
        await expect(manager.get_by_role("button", name=zh("Verified: close the hazard"))).to_have_count(0)
        await assert_accessible(manager)

        # 5. The responsible person adds a passkey on their phone and signs the report with it.
        responsible = await responsible_ctx.new_page()
        await with_authenticator(responsible)
        await demo_sign_in(responsible, *RESPONSIBLE)
        await responsible.goto("/account/passkeys")
        await responsible.get_by_role("button", name=zh("Add a passkey on this device")).click()
        await expect(responsible.locator("form[action$='/rename']")).to_have_count(1)
        selfcheck_url = manager.url.split("/hazards/")[0] + f"/selfchecks/{selfcheck_id}"
        await responsible.goto(selfcheck_url)
        await assert_accessible(responsible)
        await responsible.get_by_role("button", name=zh("Sign the report with my passkey")).click()
        await expect(responsible.get_by_role("link", name=zh("Check the signature"))).to_be_visible()
        await assert_accessible(responsible)

        # 6. The PDF downloads.
        async with responsible.expect_download() as download_info:
            await responsible.get_by_role("link", name=zh("Download the report (PDF)")).click()
        download = await download_info.value
        pdf = tmp_path / "report.pdf"
        await download.save_as(pdf)
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000

        # 7. The public verification page, and `portal verify-report`, confirm the signature.
        await responsible.get_by_role("link", name=zh("Check the signature")).click()
        await expect(responsible.get_by_text(zh("signature valid")).first).to_be_visible()
        # The key it was made with: the passkey just added, as the audit log recorded it.
        await expect(responsible.get_by_text(zh("Passkey registered on"))).to_be_visible()
        await assert_accessible(responsible)
        await responsible.screenshot(path=screenshot_dir / "e2e-month-verified-phone-zh.png")
        done = await asyncio.to_thread(
            subprocess.run,
            [portal_command["portal"], "verify-report", selfcheck_id],
            env=portal_command["env"],
            cwd=portal_command["cwd"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines()[-1] == "OK"
        assert UNIT in done.stdout

        # 8. The year's commitment: prepared and signed with the same passkey; the public board (opened
        #    by a passer-by's phone, signed out) shows it verified; the poster prints its QR code.
        tenant_url = selfcheck_url.split("/selfchecks/")[0]
        await responsible.goto(tenant_url + "/commitment")
        await assert_accessible(responsible)
        await responsible.get_by_role("button", name=zh("Prepare this year's commitment")).click()
        await responsible.get_by_role("button", name=zh("Sign the commitment with my passkey")).click()
        await expect(responsible.get_by_text(zh("signature valid")).first).to_be_visible()
        await assert_accessible(responsible)
        await responsible.goto(tenant_url + "/board/poster")
        await expect(responsible.locator(".qr svg")).to_be_visible()
        await assert_accessible(responsible)
        passer_by = await new_context(browser, portal_server, PHONE)
        try:
            board = await passer_by.new_page()
            await board.goto(tenant_url.replace("/t/", "/board/"))
            await expect(board.get_by_role("heading", level=1)).to_have_text(UNIT)
            await expect(board.get_by_text(RESPONSIBLE[0], exact=True)).to_be_visible()
            await expect(board.get_by_text(zh("signature valid")).first).to_be_visible()
            await expect(board.get_by_text(FAULT)).to_have_count(0)  # no hazard details in public
            await assert_accessible(board)
            await board.screenshot(path=screenshot_dir / "e2e-public-board-phone-zh.png", full_page=True)
        finally:
            await passer_by.close()
    finally:
        for ctx in (manager_ctx, staff_ctx, responsible_ctx):
            await ctx.close()
