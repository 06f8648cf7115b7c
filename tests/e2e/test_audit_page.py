"""The audit page in a real browser, on a phone: T01's manager reads her unit's chain and filters it in place.

Runs against the demo-seeded server of ``portal_server``; every state of the page goes through axe.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.axe import assert_accessible

pytestmark = pytest.mark.e2e

TENANT_URL = re.compile(r"/t/([0-9a-f-]{36})$")
SIGNIN_URL = re.compile(r"/signin(\?.*)?$")


async def test_manager_reads_and_filters_the_audit_log_on_a_phone(
    phone: Page, portal_server: str, screenshot_dir: Path
) -> None:
    page = phone
    await page.goto("/signin")
    await page.get_by_role("button", name=re.compile(r"^白霞\s+t01\.manager\b")).click()
    await expect(page).to_have_url(TENANT_URL)
    match = TENANT_URL.search(page.url)
    assert match is not None
    audit_url = f"/t/{match.group(1)}/audit"

    # Read in English: the page's labels are checked without depending on the Chinese catalogue.
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.goto(audit_url)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    await expect(page.get_by_text("Chain verified ✓")).to_be_visible()
    entries = page.get_by_role("list", name="Audit entries, newest first").get_by_role("listitem")
    # The demo seeding registered T01 (entry #0), added its people and opened its self-checks.
    await expect(entries.last).to_contain_text("#0")
    await expect(entries.last).to_contain_text("Unit registered on the platform")
    await expect(entries.filter(has_text="Person joined").first).to_be_visible()
    joined = await entries.count()
    assert joined >= 3
    await assert_accessible(page)
    # Nothing (a hash, an id) makes the page wider than the phone.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=screenshot_dir / "e2e-audit-phone-en.png", full_page=True)

    # Filtering swaps the entries in place and pushes a deep link.
    await page.get_by_label("Action", exact=True).select_option("tenant.registered")
    await expect(page).to_have_url(re.compile(r"/audit\?action=tenant\.registered"))
    await expect(entries).to_have_count(1)
    await expect(page.locator("#audit-count")).to_have_text("1 entry")
    await assert_accessible(page)

    # Nothing matches: the empty state says so.
    await page.get_by_label("Who (name or login)").fill("nobody-at-all")
    await expect(page.get_by_text("No entries match these filters.")).to_be_visible()
    await assert_accessible(page)

    # The same page in Chinese, as the manager normally reads it, passes axe too.
    await page.get_by_role("button", name="中文").click()
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await page.goto(audit_url)
    await expect(page.locator("ol.audit-entries > li").first).to_be_visible()
    await assert_accessible(page)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=screenshot_dir / "e2e-audit-phone-zh.png", full_page=True)
