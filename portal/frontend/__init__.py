"""Shared layout, components, CSS/JS and translations. Builds the Jinja environment every page uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from portal.config import Settings
from portal.core import i18n

HERE = Path(__file__).resolve().parent
PORTAL = HERE.parent
# Each domain keeps its pages in its own templates/ folder; the shared layout comes first.
# Sub-domains (e.g. selfcheck/hazards/) keep theirs beside their routes, so look at every depth.
TEMPLATE_DIRS = [
    HERE / "templates",
    *sorted(p for p in PORTAL.glob("**/templates") if HERE not in p.parents and p != HERE / "templates"),
]


def jinja_environment(
    settings: Settings, domain_globals: Mapping[str, Callable[..., Any]] | None = None
) -> Environment:
    """The environment of every page; ``domain_globals`` are the functions the app factory hands the
    domains' templates (this package imports no domain)."""
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in TEMPLATE_DIRS]),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # Re-reading a template when its file changes is for development; elsewhere it is a stat() of every
        # template a page uses (the dashboard, about ten) on every request.
        auto_reload=settings.env == "development",
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message, **kw: i18n.gettext(message, **kw),
        # Jinja's new-style ngettext fills in num and every other placeholder itself: hand it the raw text.
        lambda s, p, n: i18n.translations(i18n.current_locale()).ngettext(s, p, n),
        newstyle=True,
    )
    tz = ZoneInfo(settings.display_timezone)

    def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        # Stored in UTC, shown in the display zone (PORTAL_DISPLAY_TIMEZONE).
        return value.astimezone(tz).strftime(fmt) if value else ""

    def localized(obj: Any, field: str) -> str:
        """``name_zh`` / ``name_en`` by page language, falling back to Chinese."""
        if i18n.current_locale() == "en":
            return getattr(obj, f"{field}_en", "") or getattr(obj, f"{field}_zh", "")
        return getattr(obj, f"{field}_zh", "")

    def fingerprint(value: str | None) -> str:
        # A SHA-256 in groups of four, so that a person can compare it by eye or read it out.
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if value else ""

    env.filters["local_time"] = local_time
    env.filters["fingerprint"] = fingerprint
    env.globals.update(
        current_locale=i18n.current_locale,
        html_lang=lambda: i18n.html_lang(i18n.current_locale()),
        languages=i18n.LANGUAGE_NAMES,
        localized=localized,
        demo_mode=settings.demo,
    )
    env.globals.update(domain_globals or {})
    return env
