"""Invitations and passkeys in a real Chromium with a virtual WebAuthn authenticator (DevTools protocol).

A manager invites a new staff member; the invitee opens the link on their own phone (a fresh browser with
a platform authenticator: ctap2, internal, resident keys, user verification), creates a passkey, lands on
the unit's home, signs out and back in with the passkey alone; a residents' committee then makes the same
person a grid warden too, so they switch between their two roles; finally they sign out everywhere, which
also ends the session of a second device. Without user verification the sign-in is refused, with a
message. Every page visited is checked with axe.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.async_api import Browser, CDPSession, Page, expect

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE, new_context
from tests.identity.helpers import zh

pytestmark = pytest.mark.e2e

TENANT_URL = re.compile(r"/t/[0-9a-f-]{36}$")
SIGNIN_URL = re.compile(r"/signin(\?.*)?$")
T01 = "示例市第一人民医院"
ONLY_PASSKEY = (
    "This is your only passkey, so it cannot be revoked: you would have no way to sign in. "
    "Add another passkey first, or ask whoever invited you for a recovery invitation."
)
# Refused by the server (the answer lacks the UV flag), or by the browser itself (NotAllowedError).
NOT_VERIFIED = (
    "Your device did not confirm that it is you (fingerprint, face or screen lock). "
    "Please try again and unlock with your device.",
    "Your device did not confirm that it is you, or the request was cancelled or timed out. "
    "Nothing was changed; please try again.",
)


async def with_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator on this page: CTAP2, built in, resident keys, user verification."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


async def demo_sign_in(page: Page, name: str, login: str) -> None:
    await page.goto("/signin")
    await assert_accessible(page)
    await page.get_by_role("button", name=re.compile(rf"^{re.escape(name)}\s+{re.escape(login)}\b")).click()
    await expect(page).not_to_have_url(SIGNIN_URL)
    await assert_accessible(page)


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="退出登录").click()
    await expect(page).to_have_url(SIGNIN_URL)
    await assert_accessible(page)


async def create_invitation(page: Page, name: str, screenshot: Path | None = None) -> str:
    """On /invitations (already open): fill the form shown, submit, check the result page, return the link."""
    await page.get_by_label(zh("Name of the person")).fill(name)
    await page.get_by_role("button", name=zh("Create invitation")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(zh("Invitation ready"))
    await expect(page.locator("figure svg[role=img]")).to_be_visible()
    await expect(page.get_by_role("button", name=zh("Print"))).to_be_visible()
    await assert_accessible(page)
    if screenshot is not None:
        await page.screenshot(path=screenshot, full_page=True)
    link = await page.get_by_label(zh("Invitation link")).input_value()
    assert re.fullmatch(r"http://localhost:\d+/invite/[A-Za-z0-9_-]{43}", link), link
    # Only the hash is kept: the list shows the invitation's status, never its link again.
    await page.goto("/invitations")
    await expect(page.get_by_text(name, exact=True)).to_be_visible()
    assert link.rsplit("/", 1)[1] not in await page.content()
    await assert_accessible(page)
    return link


async def manager_invites_staff(browser: Browser, base_url: str, name: str, screenshots: Path | None) -> str:
    ctx = await new_context(browser, base_url, DESKTOP)
    try:
        page = await ctx.new_page()
        await demo_sign_in(page, "白霞", "t01.manager")
        await page.goto("/invitations")
        await expect(page.get_by_role("heading", level=1)).to_have_text(zh("Invitations"))
        await expect(page.get_by_role("radio", name=zh("staff"))).to_be_checked()
        await assert_accessible(page)
        return await create_invitation(page, name, screenshots)
    finally:
        await ctx.close()


async def accept_on_phone(page: Page, link: str, name: str, screenshot: Path | None = None) -> None:
    await page.goto(link)
    await expect(page.get_by_role("heading", level=1)).to_have_text(zh("You are invited"))
    await expect(page.get_by_text(zh("%(role)s of %(place)s", role=zh("staff"), place=T01))).to_be_visible()
    await expect(page.get_by_text("白霞")).to_be_visible()  # who invited
    await expect(page.get_by_label(zh("Your name"))).to_have_value(name)
    await assert_accessible(page)
    if screenshot is not None:
        await page.screenshot(path=screenshot, full_page=True)
    await page.get_by_role("button", name=zh("Create my passkey and join")).click()
    await expect(page).to_have_url(TENANT_URL)
    await expect(page.get_by_role("heading", level=1)).to_have_text(T01)
    await expect(page.get_by_role("table").get_by_role("cell", name=name, exact=True)).to_be_visible()
    await assert_accessible(page)


async def passkey_sign_in(page: Page) -> None:
    await page.goto("/signin/passkey")
    await expect(page.get_by_role("heading", level=1)).to_have_text(zh("Sign in with a passkey"))
    await assert_accessible(page)
    await page.get_by_role("button", name=zh("Sign in with a passkey")).click()


async def test_invited_staff_joins_with_a_passkey_switches_roles_and_signs_out_everywhere(
    browser: Browser, portal_server: str, screenshot_dir: Path
) -> None:
    name = f"测试员工{secrets.randbelow(10_000):04d}"
    link = await manager_invites_staff(browser, portal_server, name, screenshot_dir / "e2e-invitation-zh.png")

    phone_ctx = await new_context(browser, portal_server, PHONE)
    other_ctx = await new_context(browser, portal_server, DESKTOP)
    try:
        phone = await phone_ctx.new_page()
        cdp, authenticator = await with_authenticator(phone)
        await accept_on_phone(phone, link, name, screenshot_dir / "e2e-invitation-accept-zh.png")
        home = phone.url
        held = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))["credentials"]
        assert len(held) == 1 and held[0]["isResidentCredential"] and held[0]["rpId"] == "localhost"

        # The link is spent.
        await phone.goto(link)
        await expect(phone.get_by_role("heading", level=1)).to_have_text(zh("This invitation cannot be used"))
        await expect(phone.get_by_role("alert")).to_contain_text(
            zh(
                "This invitation was already used: each invitation works once. "
                "If it was not you who used it, tell whoever invited you."
            )
        )
        await assert_accessible(phone)

        # Out, and back in with the passkey alone (no demo sign-in).
        await phone.goto(home)
        await sign_out(phone)
        await passkey_sign_in(phone)
        await expect(phone).to_have_url(home)
        await expect(phone.get_by_role("heading", level=1)).to_have_text(T01)
        await assert_accessible(phone)
        await phone.goto("/account/passkeys")
        await expect(phone.get_by_role("heading", level=1)).to_have_text(zh("Your passkeys"))
        await expect(phone.get_by_text(zh(ONLY_PASSKEY))).to_be_visible()
        await assert_accessible(phone)

        # The residents' committee of T01's grid makes the same person a grid warden too.
        committee_ctx = await new_context(browser, portal_server, DESKTOP)
        try:
            committee = await committee_ctx.new_page()
            await demo_sign_in(committee, "袁晓峰", "committee.jb")
            await committee.goto("/invitations")
            await expect(
                committee.get_by_role("heading", level=2, name=zh("Invite a grid warden"))
            ).to_be_visible()
            await committee.get_by_label(zh("Grid"), exact=True).select_option(label="江滨社区第一网格")
            await assert_accessible(committee)
            warden_link = await create_invitation(committee, name)
        finally:
            await committee_ctx.close()
        await phone.goto(warden_link)
        await expect(
            phone.get_by_text(zh("Grid warden of %(grid)s", grid="江滨社区第一网格"))
        ).to_be_visible()
        await assert_accessible(phone)
        await phone.get_by_role("button", name=zh("Add this role to my account")).click()
        await expect(phone).to_have_url(re.compile(r"/tenants$"))
        await assert_accessible(phone)

        # Two roles now: switch back to the unit.
        await phone.get_by_role("link", name="切换身份").click()
        await expect(phone.get_by_role("radio")).to_have_count(2)
        await assert_accessible(phone)
        await phone.get_by_role("radio", name=re.compile(re.escape(T01))).check()
        await phone.get_by_role("button", name="切换", exact=True).click()
        await expect(phone).to_have_url(home)
        await assert_accessible(phone)

        # A second device holding the same passkey (a synced copy) signs in as well ...
        other = await other_ctx.new_page()
        other_cdp, other_authenticator = await with_authenticator(other)
        held = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))["credentials"]
        await other_cdp.send(
            "WebAuthn.addCredential", {"authenticatorId": other_authenticator, "credential": held[0]}
        )
        await passkey_sign_in(other)
        await expect(other).to_have_url(home)
        await assert_accessible(other)

        # ... and "sign out everywhere" on the phone ends both.
        await phone.goto("/account/sessions")
        await assert_accessible(phone)
        await phone.get_by_role("button", name=zh("Sign out everywhere")).click()
        await expect(phone).to_have_url(SIGNIN_URL)
        await assert_accessible(phone)
        await other.goto(home)
        await expect(other).to_have_url(SIGNIN_URL)
        await assert_accessible(other)
    finally:
        await phone_ctx.close()
        await other_ctx.close()


async def test_sign_in_without_user_verification_is_refused(
    browser: Browser, portal_server: str, screenshot_dir: Path
) -> None:
    name = f"测试验证{secrets.randbelow(10_000):04d}"
    link = await manager_invites_staff(browser, portal_server, name, None)
    ctx = await new_context(browser, portal_server, PHONE)
    try:
        page = await ctx.new_page()
        cdp, authenticator = await with_authenticator(page)
        await accept_on_phone(page, link, name)
        home = page.url
        await sign_out(page)

        # The phone's lock is not passed (no fingerprint, face or PIN): refused, and said so.
        await cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": False}
        )
        await passkey_sign_in(page)
        alert = page.get_by_role("alert")
        await expect(alert).to_be_visible()
        await expect(alert).to_have_text(re.compile("|".join(re.escape(zh(m)) for m in NOT_VERIFIED)))
        await expect(page).to_have_url(re.compile(r"/signin/passkey$"))
        await assert_accessible(page)
        await page.screenshot(path=screenshot_dir / "e2e-passkey-refused-zh.png")
        await page.goto(home)
        await expect(page).to_have_url(SIGNIN_URL)  # nobody was signed in

        # With the lock passed, the same passkey works.
        await cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": True})
        await passkey_sign_in(page)
        await expect(page).to_have_url(home)
        await assert_accessible(page)
    finally:
        await ctx.close()


async def test_a_browser_without_webauthn_is_told_so(browser: Browser, portal_server: str) -> None:
    ctx = await new_context(browser, portal_server, PHONE)
    try:
        await ctx.add_init_script("delete window.PublicKeyCredential;")
        page = await ctx.new_page()
        await page.goto("/signin/passkey")
        await expect(page.get_by_text(zh("This browser cannot use passkeys"))).to_be_visible()
        await expect(page.get_by_role("button", name=zh("Sign in with a passkey"))).to_be_hidden()
        await assert_accessible(page)
    finally:
        await ctx.close()
