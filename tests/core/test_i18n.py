"""Every user-facing string is translated into Chinese, and the page language is negotiated sensibly."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from portal.core import i18n

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _source_ids() -> set[str]:
    ids: set[str] = set()
    for package in ("portal", "worker"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / package, METHODS, options_map=OPTIONS, keywords=KEYWORDS
        ):
            ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


def _catalog(locale: str):  # type: ignore[no-untyped-def]
    with (i18n.TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def test_every_message_id_is_translated_in_zh_cn() -> None:
    catalog = _catalog("zh_CN")
    ids = _source_ids()
    assert len(ids) > 20  # the extractor found the templates and the Python messages
    missing = sorted(i for i in ids if i not in catalog)
    assert not missing, f"not in zh_CN catalogue (run `make translations`): {missing}"
    untranslated = sorted(
        i
        for i in ids
        if not catalog[i].string
        or (isinstance(catalog[i].string, tuple) and not all(catalog[i].string))
        or "fuzzy" in catalog[i].flags
    )
    assert not untranslated, f"untranslated or fuzzy in zh_CN: {untranslated}"


def test_english_catalogue_knows_every_id() -> None:
    catalog = _catalog("en")
    missing = sorted(i for i in _source_ids() if i not in catalog)
    assert not missing, f"not in en catalogue (run `make translations`): {missing}"


@pytest.mark.parametrize(
    ("explicit", "cookie", "pref", "accept", "expected"),
    [
        (None, None, None, None, "zh_CN"),
        (None, None, None, "en-US,en;q=0.9", "en"),
        (None, None, None, "zh-TW,zh;q=0.8", "zh_CN"),
        (None, None, None, "fr-FR,fr;q=0.9", "zh_CN"),
        (None, "en", None, "zh-CN", "en"),
        ("zh_CN", "en", "en", "en", "zh_CN"),
        (None, None, "en", "zh-CN", "en"),
        ("xx", "yy", None, None, "zh_CN"),
    ],
)
def test_negotiation(
    explicit: str | None, cookie: str | None, pref: str | None, accept: str | None, expected: str
) -> None:
    assert (
        i18n.negotiate(explicit=explicit, cookie=cookie, user_pref=pref, accept_language=accept) == expected
    )


def test_gettext_follows_the_current_locale() -> None:
    i18n.set_locale("zh_CN")
    assert i18n.gettext("Sign in") == "登录"
    i18n.set_locale("en")
    assert i18n.gettext("Sign in") == "Sign in"
    i18n.set_locale("zh_CN")
