"""Limit periods of rewards: which month, quarter or year a moment falls in, and where
it starts, in the community's time zone.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ...extensions import db
from ...models import Area, LimitPeriod
from ...zones import area_zone

PERIOD_LABELS = {
    LimitPeriod.MONTH: "month",
    LimitPeriod.QUARTER: "quarter",
    LimitPeriod.YEAR: "year",
    LimitPeriod.ALL: "all time",
}


def community_zone(community_id: int | None) -> ZoneInfo:
    """Return the time zone of the community (the default zone for None)."""
    area = db.session.get(Area, community_id) if community_id is not None else None
    return area_zone(area)


def period_key(period: LimitPeriod, when: datetime, zone: ZoneInfo) -> str:
    """Return the bucket of ``when``: ``2026-11``, ``2026-Q4``, ``2026`` or ``all``."""
    local = when.astimezone(zone)
    if period == LimitPeriod.MONTH:
        return f"{local.year:04d}-{local.month:02d}"
    if period == LimitPeriod.QUARTER:
        return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
    if period == LimitPeriod.YEAR:
        return f"{local.year:04d}"
    return "all"


def period_start(period: LimitPeriod, when: datetime, zone: ZoneInfo) -> datetime | None:
    """Return the start of the period containing ``when`` (None for ``all``)."""
    local = when.astimezone(zone)
    if period == LimitPeriod.MONTH:
        return datetime(local.year, local.month, 1, tzinfo=zone)
    if period == LimitPeriod.QUARTER:
        return datetime(local.year, 3 * ((local.month - 1) // 3) + 1, 1, tzinfo=zone)
    if period == LimitPeriod.YEAR:
        return datetime(local.year, 1, 1, tzinfo=zone)
    return None
