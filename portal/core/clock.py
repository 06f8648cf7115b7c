"""One clock for the whole portal. Moments are stored in UTC; the display time zone
(``PORTAL_DISPLAY_TIMEZONE``, a setting) decides which day, month and year a moment belongs to (periods,
deadlines, patrol days, the keys of periodic jobs) and what pages, PDFs and photo names show. Nothing else
names a time zone."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from portal.config import get_settings

__all__ = ["local", "zone", "zone_name"]


def zone_name() -> str:
    """The display time zone's IANA name."""
    return get_settings().display_timezone


def zone() -> ZoneInfo:
    """The display time zone."""
    return _zone(zone_name())


def local(moment: datetime) -> datetime:
    """``moment`` (aware) in the display time zone."""
    return moment.astimezone(zone())


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
