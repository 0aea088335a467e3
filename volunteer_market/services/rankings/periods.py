"""Periods of a ranking: ``all``, a year, a quarter or a month, in a community's zone.

A posting counts in the four periods of its (earn's) time in the community's time
zone (:func:`period_keys`); requests name one period (:func:`parse_period`, the key
format ``PERIOD_RE`` lives in ``models/rankings.py``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ...models import utcnow
from ...models.rankings import PERIOD_RE
from ...zones import DEFAULT_TIMEZONE, zone
from ..errors import ValidationFailed


def period_keys(moment: datetime, tz: str = DEFAULT_TIMEZONE) -> list[str]:
    """Return the period keys of ``moment`` in time zone ``tz``:
    ``["all", "2026", "2026-Q4", "2026-11"]``."""
    local = moment.astimezone(_zone(tz))
    quarter = (local.month - 1) // 3 + 1
    return ["all", f"{local.year:04d}", f"{local.year:04d}-Q{quarter}", f"{local:%Y-%m}"]


def parse_period(value: str | None) -> str:
    """Return the validated period key (``None`` -> ``all``).

    :raises ValidationFailed: not ``all``, ``YYYY``, ``YYYY-Qn`` or ``YYYY-MM``.
    """
    if value is None or value == "":
        return "all"
    if not isinstance(value, str) or not PERIOD_RE.match(value):
        raise ValidationFailed(
            "Unknown period.",
            errors={
                "period": ["Use all, a year (2026), a quarter (2026-Q4) or a month (2026-11)."]
            },
        )
    return value


def recent_months(
    months: int = 12, tz: str = DEFAULT_TIMEZONE, now: datetime | None = None
) -> list[str]:
    """Return the last ``months`` month keys up to the current one, oldest first."""
    local = (now or utcnow()).astimezone(_zone(tz))
    year, month = local.year, local.month
    out: list[str] = []
    for _ in range(months):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(out))


def current_periods(tz: str = DEFAULT_TIMEZONE, now: datetime | None = None) -> list[str]:
    """Return ``[all, this year, this quarter, this month]`` keys for pickers."""
    return period_keys(now or utcnow(), tz)


def _zone(tz: str | None) -> ZoneInfo:
    return zone(tz)  # an unknown zone name falls back to the default: never fail a posting
