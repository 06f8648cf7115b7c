"""Accessibility check with axe-core (the npm package in portal/frontend/node_modules).

Every page an e2e test visits goes through :func:`assert_accessible`: WCAG 2.0/2.1 A and AA plus
WCAG 2.2 AA rules; a "serious" or "critical" violation fails the test with every offending node listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

AXE_JS = (
    Path(__file__).resolve().parents[2] / "portal" / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
)
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = {"serious", "critical"}

_RUN_AXE = """
async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary || ""})),
  }));
}
"""


async def _inject(page: Page) -> None:
    if await page.evaluate("() => typeof window.axe !== 'undefined'"):
        return  # still there: the page was only changed by htmx, not reloaded
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm ci` in portal/frontend")
    # Evaluated through DevTools, not added as a <script>: the portal's Content-Security-Policy refuses
    # inline scripts, and a refusal fails the test (tests/e2e/conftest.py).
    await page.evaluate(AXE_JS.read_text())


def format_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}" + (f" — {summary}" if summary else ""))
    return "\n".join(lines)


async def assert_accessible(page: Page) -> list[dict[str, Any]]:
    """Run axe on the page as it is now; fail on serious/critical violations, return the milder ones."""
    await page.wait_for_load_state("load")
    await _inject(page)
    violations: list[dict[str, Any]] = await page.evaluate(_RUN_AXE, WCAG_TAGS)
    bad = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    if bad:
        pytest.fail(
            f"axe found accessibility violations on {page.url}:\n{format_violations(bad)}", pytrace=False
        )
    return [v for v in violations if v["impact"] not in FAILING_IMPACTS]
