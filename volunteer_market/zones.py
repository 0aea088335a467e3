"""Time zones: the one place that names the default zone and turns an area into its zone.

Every community keeps its own ``timezone`` (``Area.timezone``, inherited from the parent
when an area is created); the service is built for Chinese communities, so the default
everywhere (new areas, Babel, command-line dates) is China Standard Time.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The zone of a new area, of Babel's formatting, and of dates typed on the command line.
DEFAULT_TIMEZONE = "Asia/Shanghai"


@lru_cache(maxsize=64)
def zone(name: str | None = None) -> ZoneInfo:
    """Return the zone called ``name``; the default zone for None or an unknown name."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


DEFAULT_ZONE = zone()


def area_zone(area: Any | None) -> ZoneInfo:
    """Return the zone of ``area`` (anything with a ``timezone``), or the default zone."""
    return zone(getattr(area, "timezone", None) if area is not None else None)


def local_today(now: datetime, tz: ZoneInfo | None = None) -> date:
    """Return the calendar date of ``now`` in ``tz`` (default zone)."""
    return now.astimezone(tz or DEFAULT_ZONE).date()
