"""Where a request may send the browser next: only paths of this site (an open redirect after sign-in is a
phishing tool), everywhere a ``next`` is read."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from portal.core.web import NEXT_MAX, safe_next
from tests.fixtures.factories import World
from tests.fixtures.web import post_form

HOSTILE = [
    "//evil.example/x",
    "/\\evil.example/x",
    "/\\/evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "/ok\r\nLocation: https://evil.example",
    "/\tevil",
    "/" + "a" * NEXT_MAX,
    "",
    None,
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_become_the_home_page(target: str | None) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/t/123/hazards/", "/inbox/?page=2", "/a" * 200])
def test_paths_of_this_site_are_kept(target: str) -> None:
    assert safe_next(target) == target


async def test_sign_in_and_language_never_send_the_browser_away(
    client: AsyncTestClient, world: World
) -> None:
    page = await client.get("/signin", params={"next": "/\\evil.example/x"})
    assert page.status_code == 200 and "evil.example" not in page.text
    signed_in = await post_form(
        client, "/signin/demo", {"login": world.users["manager_a"].login, "next": "/\\evil.example/x"}
    )
    assert signed_in.status_code == 303 and "evil" not in signed_in.headers["location"]
    assert signed_in.headers["location"].startswith("/t/")  # the person's home instead
    lang = await post_form(client, "/lang", {"lang": "en", "next": "//evil.example"})
    assert lang.status_code == 303 and lang.headers["location"] == "/"
