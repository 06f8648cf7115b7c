"""The portal in a real browser: demo sign-in, tenant home, language switch, live search, tenant isolation.

Runs against the server of ``portal_server`` (demo city seeded), in Chinese as the users' browsers are.
Every page visited is checked with axe (tests/e2e/axe.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.axe import assert_accessible

pytestmark = pytest.mark.e2e

TENANT_URL = re.compile(r"/t/[0-9a-f-]{36}$")
SIGNIN_URL = re.compile(r"/signin(\?.*)?$")
# Fonts that carry Chinese glyphs; anything else drawing the heading means tofu boxes.
CJK_FONT = re.compile(r"CJK|Hei|Song|Kai|Ming|WenQuanYi|PingFang|YaHei|Droid Sans Fallback|Source Han", re.I)


def person(page: Page, name: str, login: str) -> Locator:
    """The demo sign-in button of one person (name, then login, then their roles)."""
    return page.get_by_role("button", name=re.compile(rf"^{re.escape(name)}\s+{re.escape(login)}\b"))


async def sign_in(page: Page, name: str, login: str) -> None:
    """Open /signin (checked with axe) and pick the demo person."""
    await page.goto("/signin")
    await expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    await assert_accessible(page)
    await person(page, name, login).click()
    await expect(page).not_to_have_url(SIGNIN_URL)


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="退出登录").click()
    await expect(page).to_have_url(SIGNIN_URL)
    await assert_accessible(page)


async def fonts_drawing(page: Page, selector: str) -> list[str]:
    """The platform fonts Chromium actually used for the text of ``selector`` (DevTools CSS domain)."""
    cdp = await page.context.new_cdp_session(page)
    try:
        await cdp.send("DOM.enable")
        await cdp.send("CSS.enable")
        doc = await cdp.send("DOM.getDocument", {"depth": 0})
        found = await cdp.send("DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": selector})
        fonts = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": found["nodeId"]})
    finally:
        await cdp.detach()
    return [f["familyName"] for f in fonts["fonts"]]


async def test_manager_on_a_phone_signs_in_switches_language_and_signs_out(
    phone: Page, portal_server: str, screenshot_dir: Path
) -> None:
    page = phone

    # The start page sends an anonymous visitor to sign in, in Chinese (the default language).
    await page.goto("/")
    await expect(page).to_have_url(SIGNIN_URL)
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    await expect(page.get_by_role("heading", name="演示登录")).to_be_visible()
    heading_fonts = await fonts_drawing(page, "h1")
    assert any(CJK_FONT.search(f) for f in heading_fonts), (
        f"登录 is drawn with {heading_fonts}: no CJK font (apt-get install fonts-noto-cjk)"
    )
    # The first screen only: the full list of demo people is some 15,000 px tall.
    await page.screenshot(path=screenshot_dir / "e2e-signin-zh.png")
    await assert_accessible(page)

    # 白霞 manages the hospital T01: her sign-in lands on its home page with facts and roster.
    await person(page, "白霞", "t01.manager").click()
    await expect(page).to_have_url(TENANT_URL)
    home_url = page.url
    await expect(page.get_by_role("heading", level=1)).to_have_text("示例市第一人民医院")
    await expect(page.get_by_role("heading", level=2, name="人员")).to_be_visible()
    roster = page.get_by_role("table", name="本单位人员及其职责")
    await expect(roster.get_by_role("columnheader")).to_have_text(["姓名", "职责"])
    await expect(roster.get_by_role("row", name=re.compile(r"白霞\s+消防安全管理人"))).to_be_visible()
    for name in ("戴俊杰", "袁一鸣", "任春燕"):
        await expect(roster.get_by_role("cell", name=name, exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    await assert_accessible(page)
    await page.screenshot(path=screenshot_dir / "e2e-tenant-home-zh.png", full_page=True)

    # The header's language button re-renders the same page in English ...
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.url == home_url
    await expect(page.get_by_role("heading", level=1)).to_have_text("Shili No.1 People's Hospital")
    await expect(page.get_by_role("heading", level=2, name="People")).to_be_visible()
    people = page.get_by_role("table", name="People of this unit and their roles")
    await expect(people.get_by_role("columnheader")).to_have_text(["Name", "Role"])
    await assert_accessible(page)

    # ... and back to Chinese.
    await page.get_by_role("button", name="中文").click()
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert page.url == home_url
    await expect(page.get_by_role("heading", level=1)).to_have_text("示例市第一人民医院")
    await assert_accessible(page)

    # Signing out ends the session: back at sign-in, and the home page is no longer open to this browser.
    await sign_out(page)
    await page.goto(home_url)
    await expect(page).to_have_url(SIGNIN_URL)
    await assert_accessible(page)


async def test_regulator_at_a_desk_searches_live_and_pages(desktop: Page, portal_server: str) -> None:
    page = desktop
    await sign_in(page, "王继红", "reg.city")

    # The city regulator sees every unit and community of the demo city, 25 to a page.
    await expect(page).to_have_url(re.compile(r"/tenants$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("单位和小区")
    rows = page.locator("#tenant-rows ul.list > li")
    await expect(rows).to_have_count(25)
    await expect(page.locator("#tenant-count")).to_contain_text("40 个单位或小区")
    await expect(page.get_by_role("navigation", name="分页")).to_contain_text("第 1 页，共 2 页")
    await assert_accessible(page)

    # Tag this document: a full page load would lose the tags, an htmx swap keeps them.
    await page.evaluate(
        """() => {
          window.__e2eSwaps = 0;
          document.body.addEventListener("htmx:afterSwap", () => { window.__e2eSwaps += 1; });
          window.__e2eHeading = document.querySelector("h1");
        }"""
    )

    async def swapped_in_place() -> tuple[int, bool]:
        """(htmx swaps this document saw, or -1 for a new document; is the tagged <h1> still in it)."""
        swaps, same_heading = await page.evaluate(
            """() => [window.__e2eSwaps ?? -1,
                      window.__e2eHeading === document.querySelector("h1")
                      && document.contains(window.__e2eHeading)]"""
        )
        return int(swaps), bool(same_heading)

    # Typing narrows the list as you go (no submit), and the URL follows for deep links.
    await page.get_by_role("searchbox", name="按名称或编号搜索").press_sequentially("酒店", delay=50)
    await expect(rows).to_have_count(1)
    await expect(rows.first.get_by_role("link")).to_have_text("锦程大酒店")
    # The live count (outside the swapped rows, so screen readers announce it) follows the search.
    await expect(page.locator("#tenant-count")).to_have_text("1 个单位或小区")
    await expect(page).to_have_url(re.compile(r"/tenants\?q=%E9%85%92%E5%BA%97$"))
    swaps, same_heading = await swapped_in_place()
    assert swaps >= 1 and same_heading, "the search reloaded the page instead of swapping the list"
    await assert_accessible(page)

    # Clearing the search brings the whole list back; the pager then fetches page 2 in place.
    await page.get_by_role("searchbox", name="按名称或编号搜索").fill("")
    await expect(rows).to_have_count(25)
    await page.get_by_role("navigation", name="分页").get_by_role("link", name="下一页").click()
    await expect(page).to_have_url(re.compile(r"/tenants\?page=2&q=$"))
    await expect(rows).to_have_count(15)
    await expect(rows.first).to_contain_text("T26")
    await expect(rows.last).to_contain_text("T40")
    await expect(page.get_by_role("navigation", name="分页")).to_contain_text("第 2 页，共 2 页")
    await expect(page.get_by_role("link", name="上一页")).to_be_visible()
    swaps_after_pager, same_heading = await swapped_in_place()
    assert swaps_after_pager > swaps and same_heading, (
        "the pager reloaded the page instead of swapping the list"
    )
    await assert_accessible(page)

    # The pushed URL is a working deep link: a full load shows the same page 2.
    await page.reload()
    await expect(rows).to_have_count(15)
    await expect(rows.first).to_contain_text("T26")
    assert (await swapped_in_place())[0] == -1  # a new document this time
    await assert_accessible(page)


async def test_a_foreign_tenant_answers_404_on_a_phone(phone: Page, portal_server: str) -> None:
    page = phone

    # The regulator may list every unit: take T02's id from the tenants API.
    await sign_in(page, "王继红", "reg.city")
    await assert_accessible(page)
    resp = await page.request.get("/api/v1/tenants/")
    assert resp.ok, await resp.text()
    ids = {t["code"]: t["id"] for t in (await resp.json())["items"]}
    t01, t02 = ids["T01"], ids["T02"]
    await sign_out(page)

    # T01's manager opens her own unit, then T02's address: it answers as if it did not exist.
    await sign_in(page, "白霞", "t01.manager")
    await expect(page).to_have_url(re.compile(rf"/t/{t01}$"))
    await assert_accessible(page)
    answer = await page.goto(f"/t/{t02}")
    assert answer is not None and answer.status == 404
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在，或您无权查看。")
    await expect(page.get_by_text("临江万悦购物中心")).to_have_count(0)
    await assert_accessible(page)
