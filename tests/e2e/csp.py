"""Content-Security-Policy refusals in the browser, seen by the tests.

Every browser context of the e2e tests is watched (:func:`watch`, called by ``conftest.new_context``): a
script in each page, run before the page's own, turns every ``securitypolicyviolation`` event into a
console message, and the context's console listener keeps it in :data:`REFUSALS`. An autouse fixture in
conftest fails the test that had any. (Chromium writes its own "Refused to …" lines to DevTools' log, not
as console calls, so Playwright never reports them: the event is what tells.)

Its own module, not conftest: pytest imports conftest.py under another name than ``tests.e2e.conftest``,
and the list must be one.
"""

from __future__ import annotations

from playwright.async_api import BrowserContext, ConsoleMessage

EVENT = "securitypolicyviolation:"
REFUSALS: list[str] = []
# Runs through DevTools, so the page's own policy does not apply to it.
_REPORT = (
    "document.addEventListener('securitypolicyviolation', (e) => console.error("
    f"'{EVENT} ' + e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' in ' + e.documentURI));"
)


def _keep(message: ConsoleMessage) -> None:
    if message.text.startswith(EVENT):
        REFUSALS.append(message.text)


async def watch(ctx: BrowserContext) -> None:
    ctx.on("console", _keep)
    await ctx.add_init_script(script=_REPORT)


def take() -> list[str]:
    """The refusals so far, and forget them."""
    taken, REFUSALS[:] = list(REFUSALS), []
    return taken
