"""Server-side charts of the tenant dashboard, drawn with pygal as inline SVG.

The product rule: figures a person would rather look at get a chart, and the same figures stay in an HTML
table next to it (the table is what screen readers and people who cannot tell the colours apart read).
So the SVG is one image (``role="img"`` with a name), carries no script (pygal's tooltips need its
JavaScript; the page works without it), and its colours all reach 3:1 against white (WCAG 1.4.11) and
its text 4.5:1 (1.4.3). Colour is never the only cue: each outcome is drawn at its own height, and the
y axis names the heights.

The SVG sits inline in the page, so the page's Content-Security-Policy (no inline style) applies to the
``<style>`` block pygal writes into it. Every chart gets the same id, which makes that block the same
text for every chart, in every language and with any figures; the policy allows exactly that text by
its hash (:func:`style_hash`). Its size on the page comes from the stylesheet (``.pygal-chart``), not
from a ``style`` attribute.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

from portal.core.i18n import N_, _
from portal.dashboard.services import OUTCOMES, Month, Outcome

TABLE_ID = "compliance-figures"  # the table of the same figures, which the image points to
CHART_ID = "compliance"  # pygal's id of the chart (``chart-compliance``), which its style block names
OUTCOME_NAMES = {
    Outcome.ON_TIME: N_("signed on time"),
    Outcome.LATE: N_("signed late"),
    Outcome.UNSIGNED: N_("submitted, never signed"),
    Outcome.MISSED: N_("missed"),
    Outcome.UNDER_WAY: N_("under way"),
    Outcome.NOT_JOINED: N_("not on the platform yet"),
}
# The y axis names every height (short words: they sit left of a phone-wide plot). With them, no legend
# is needed to read the chart, and colour is only a second cue.
AXIS_WORDS = {
    Outcome.ON_TIME: N_("on time"),
    Outcome.LATE: N_("late"),
    Outcome.UNSIGNED: N_("not signed"),
    Outcome.MISSED: N_("missed"),
    Outcome.UNDER_WAY: N_("under way"),
}

# Contrast against white: green 6.3:1, amber 6.8:1, blue 6.2:1, red 6.5:1, grey 7.4:1 (all ≥ 3:1 for
# shapes, ≥ 4.5:1 for text); the same inks as the portal's stylesheet.
COLOURS = {
    Outcome.ON_TIME: "#1b6e33",
    Outcome.LATE: "#8a4b00",
    Outcome.UNSIGNED: "#1a56db",
    Outcome.MISSED: "#b3261e",
    Outcome.UNDER_WAY: "#4f5660",
}
# Bar heights: best highest. "Under way" is a stub, so that an empty month never looks like a good one.
HEIGHTS = {
    Outcome.ON_TIME: 4.0,
    Outcome.LATE: 3.0,
    Outcome.UNSIGNED: 2.0,
    Outcome.MISSED: 1.0,
    Outcome.UNDER_WAY: 0.4,
}
LABEL_FONT_SIZE = 17  # in a 480-wide view box: about 12 px on a phone
MARGIN = 10
INK = "#1c1f23"
MUTED = "#4f5660"
FONTS = 'system-ui, -apple-system, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif'

STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground=INK,
    foreground_strong=INK,
    foreground_subtle=MUTED,
    colors=tuple(COLOURS[o] for o in OUTCOMES),
    opacity="1",
    opacity_hover="1",
    stroke_opacity="1",
    stroke_opacity_hover="1",
    font_family=FONTS,
    label_font_size=LABEL_FONT_SIZE,
    major_label_font_size=LABEL_FONT_SIZE,
    title_font_size=LABEL_FONT_SIZE,
    guide_stroke_color=MUTED,
    major_guide_stroke_color=MUTED,
    transition="0ms",
)


def _accessible(title: str, described_by: str) -> Callable[[Any], Any]:
    """An xml filter: name the image, drop pygal's script, comments and tooltip layer (its script shows
    it; its ``style`` attribute would be refused by the page's policy)."""

    def apply(root: Any) -> Any:
        root.set("role", "img")
        root.set("aria-label", title)
        if described_by:
            root.set("aria-describedby", described_by)
        root.set("focusable", "false")
        for parent in list(root.iter()):
            for child in list(parent):
                tag = child.tag if isinstance(child.tag, str) else ""
                tooltips = "tooltip-overlay" in str(child.get("class", "")).split()
                if tag.endswith("script") or not tag or tooltips:  # comments have a function as their tag
                    parent.remove(child)
                elif tag.endswith("title"):
                    child.text = title
        return root

    return apply


def _wide_text_allowance(labels: Sequence[str], font_size: int) -> float:
    """Extra room left of the plot for labels with wide (CJK) characters: pygal sizes every character at
    0.6 em, a Chinese character takes a full em, and the y axis's words would be cut off."""
    wide = max((sum(unicodedata.east_asian_width(ch) in "WF" for ch in label) for label in labels), default=0)
    return wide * 0.45 * font_size


def month_label(period: str) -> str:
    """``2026-01`` → ``1``: twelve labels must fit under a phone-wide chart (the x axis's title gives the
    first and last month in full)."""
    return str(int(period[5:7]))


def _chart(
    rows: tuple[tuple[str, str], ...], names: tuple[str, ...], axis: tuple[str, ...], x_title: str
) -> Any:
    chart = pygal.StackedBar(
        style=STYLE,
        js=[],
        disable_xml_declaration=True,
        width=480,
        height=330,
        margin=MARGIN,
        margin_left=MARGIN + _wide_text_allowance(axis, LABEL_FONT_SIZE),
        show_legend=False,
        show_y_guides=True,
        range=(0, 4),
        print_values=False,
        truncate_label=-1,
        y_labels=[{"label": axis[n], "value": HEIGHTS[o]} for n, o in enumerate(OUTCOMES)],
        x_labels=[month_label(period) for period, _o in rows],
        x_title=x_title,
        spacing=4,
    )
    chart.uuid = CHART_ID  # not a random one: the style block stays the same text (see the module doc)
    # One series per outcome, each month in exactly one of them: a stacked bar of one piece per month,
    # coloured by its outcome and as tall as the outcome is good.
    for n, outcome in enumerate(OUTCOMES):
        chart.add(names[n], [HEIGHTS[outcome] if value == outcome.value else None for _p, value in rows])
    return chart


@lru_cache(maxsize=512)
def _compliance_svg(
    rows: tuple[tuple[str, str], ...],
    names: tuple[str, ...],
    axis: tuple[str, ...],
    title: str,
    x_title: str,
    described_by: str,
) -> str:
    # Cached: the same figures in the same language give the same picture (pygal takes a few ms).
    chart = _chart(rows, names, axis, x_title)
    chart.add_xml_filter(_accessible(title, described_by))
    return str(chart.render(is_unicode=True))


@lru_cache(maxsize=1)
def style_hash() -> str:
    """``sha256-…`` of the style block in every compliance chart, for the page's ``style-src``. The hash
    is over the block's text as the browser reads it (before XML escaping)."""
    names = tuple(o.value for o in OUTCOMES)
    tree = _chart((("2026-01", OUTCOMES[0].value),), names, names, "").render_tree()
    text = next(el.text or "" for el in tree.iter() if isinstance(el.tag, str) and el.tag.endswith("style"))
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def outcome_names() -> dict[str, str]:
    """The translated words of each outcome (the cells of the table beside the chart), by value."""
    return {o.value: _(OUTCOME_NAMES[o]) for o in Outcome}


def compliance_chart(months: Sequence[Month], *, described_by: str = "") -> Markup:
    """The 12-month self-check chart as inline SVG markup, in the current language. ``described_by``: the
    id of the table that carries the same figures."""
    rows = tuple((m.period, m.outcome.value) for m in months)
    svg = _compliance_svg(
        rows,
        tuple(_(OUTCOME_NAMES[o]) for o in OUTCOMES),
        tuple(_(AXIS_WORDS[o]) for o in OUTCOMES),
        _("Monthly self-checks of the last 12 months: signed on time, signed late, not signed or missed"),
        _("Months %(first)s to %(last)s", first=rows[0][0], last=rows[-1][0]) if rows else "",
        described_by,
    )
    # pygal escapes every text it writes (labels, title) and the figures are our own enum values.
    return Markup(svg)  # noqa: S704
