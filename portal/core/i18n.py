"""Translations with Babel: zh_CN is the default, English the second (DESIGN section 9).

Message ids are English source strings; catalogues live in ``portal/frontend/translations``. They are
compiled in memory at start-up from the ``.po`` files, so there is no build step to forget. The locale of
the current request lives in a context variable that both Jinja (``jinja2.ext.i18n``, new-style gettext)
and Python code (:func:`gettext`) read.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "frontend" / "translations"
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}

_current: ContextVar[str] = ContextVar("portal_locale", default=DEFAULT_LOCALE)


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> NullTranslations:
    po = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf)


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def current_locale() -> str:
    return _current.get()


@contextmanager
def using_locale(locale: str | None) -> Iterator[None]:
    """Messages made inside are in ``locale`` (a person's language; the default when they have none)."""
    previous = current_locale()
    set_locale(locale or DEFAULT_LOCALE)
    try:
        yield
    finally:
        set_locale(previous)


def gettext(message: str, **params: object) -> str:
    text = translations(_current.get()).gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **params}


_ = gettext


def N_(message: str) -> str:
    return message


def html_lang(locale: str) -> str:
    return "zh-CN" if locale == "zh_CN" else locale


def negotiate(
    *,
    explicit: str | None,
    cookie: str | None,
    user_pref: str | None,
    accept_language: str | None,
    default: str = DEFAULT_LOCALE,
) -> str:
    """Pick the page language: an explicit choice, then the cookie, the user's preference, the browser."""
    for choice in (explicit, cookie, user_pref):
        if choice in LOCALES:
            return str(choice)
    if accept_language:
        wanted = [part.split(";")[0].strip().replace("-", "_") for part in accept_language.split(",")]
        try:
            best = Locale.negotiate([w for w in wanted if w and w != "*"], list(LOCALES), sep="_")
        except (ValueError, UnknownLocaleError):
            best = None
        if best is not None:
            return str(best)
        for w in wanted:  # "zh", "zh_TW", "zh_Hans": Chinese readers get our Chinese
            if w.lower().startswith("zh"):
                return "zh_CN"
    return default
