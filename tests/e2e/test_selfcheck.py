"""The monthly self-check on a phone: the manager answers item by item, a failed item shows why and how."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.axe import assert_accessible

pytestmark = pytest.mark.e2e

TENANT_URL = re.compile(r"/t/([0-9a-f-]{36})$")


async def test_manager_answers_items_on_a_phone(
    phone: Page, portal_server: str, screenshot_dir: Path
) -> None:
    page = phone
    await page.goto("/signin")
    await page.get_by_role("button", name=re.compile(r"^白霞\s+t01\.manager\b")).click()
    await expect(page).to_have_url(TENANT_URL)
    await page.get_by_role("link", name="月度自查", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("月度自查")
    await assert_accessible(page)
    await page.get_by_role("link", name=re.compile(r"月度自查$")).first.click()
    await expect(page.locator("#progress-bar")).to_have_attribute("value", "0")
    await assert_accessible(page)

    first = page.locator("article.item").nth(0)
    await first.get_by_label("合格", exact=True).check()
    await expect(page.locator("#selfcheck-progress")).to_contain_text("已回答 1 项")

    second = page.locator("article.item").nth(1)
    await second.get_by_label("不合格", exact=True).check()
    # No note yet: the refusal appears in the item itself, and nothing is saved.
    await expect(page.locator("article.item").nth(1).get_by_role("alert")).to_contain_text(
        "请说明存在什么问题"
    )
    await expect(page.locator("#selfcheck-progress")).to_contain_text("已回答 1 项")
    await page.locator("article.item").nth(1).get_by_role("textbox").fill("配电箱前堆放纸箱")
    await page.locator("article.item").nth(1).get_by_role("textbox").blur()
    await expect(
        page.locator("article.item").nth(1).get_by_role("heading", name="为什么不行")
    ).to_be_visible()
    await expect(page.locator("#selfcheck-progress")).to_contain_text("已回答 2 项")
    await assert_accessible(page)
    await page.screenshot(path=screenshot_dir / "e2e-selfcheck-phone-zh.png")
