"""Deadlines of the cycle. Product defaults, not law (see domain README section 8); configurable."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from portal.core import clock


@dataclass(frozen=True)
class Policy:
    selfcheck_grace_days: int = 5  # sign a month's self-check by the 5th of the next month
    general_hazard_days: int = 30
    major_hazard_days: int = 7  # and reported to the grid warden and regulator at once


DEFAULT_POLICY = Policy()


def period_of(moment: datetime) -> str:
    """``2026-11`` for a moment, in the display time zone (where the unit's month is)."""
    return moment.astimezone(clock.zone()).strftime("%Y-%m")


def previous_period(period: str) -> str:
    year, month = (int(p) for p in period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def parse_period(period: str) -> tuple[int, int]:
    try:
        year, month = (int(p) for p in period.split("-"))
    except ValueError as exc:
        raise ValueError(f"not a period: {period!r}") from exc
    if not (2000 <= year <= 2100 and 1 <= month <= 12) or len(period) != 7:
        raise ValueError(f"not a period: {period!r}")
    return year, month


def signing_deadline(period: str, policy: Policy = DEFAULT_POLICY) -> datetime:
    """End of the grace day after the period's last day, in the display time zone, as UTC."""
    year, month = parse_period(period)
    last = date(year, month, calendar.monthrange(year, month)[1])
    day = last + timedelta(days=policy.selfcheck_grace_days)
    return datetime.combine(day, time(23, 59, 59), clock.zone()).astimezone(UTC)


def hazard_deadline(opened_at: datetime, major: bool, policy: Policy = DEFAULT_POLICY) -> datetime:
    days = policy.major_hazard_days if major else policy.general_hazard_days
    local = opened_at.astimezone(clock.zone()).date() + timedelta(days=days)
    return datetime.combine(local, time(23, 59, 59), clock.zone()).astimezone(UTC)
