"""Points policy (积分规则): per community, versioned; a NULL community is the default.

A new version is a new row; settlement records the ``id`` it used, so a later
change never rewrites history. The arithmetic lives in ``services/points_policy.py``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow

#: ``[[minimum average score, multiplier], ...]`` best first; below the last: 0.
DEFAULT_MULTIPLIERS: list[list[float]] = [[4.5, 1.2], [3.5, 1.0], [2.5, 0.5]]


class ExpiryRule(enum.StrEnum):
    NONE = "none"  # wallet points never expire
    END_OF_NEXT_YEAR = "end_of_next_year"  # points earned in year Y expire on 31 Dec Y+1


def default_multipliers() -> list[list[float]]:
    """Return a fresh copy of the default multiplier table."""
    return [list(row) for row in DEFAULT_MULTIPLIERS]


class PointsPolicy(Model):
    __tablename__ = "points_policies"
    __table_args__ = (
        sa.UniqueConstraint("community_id", "version", name="uq_points_policies_community_version"),
        #: UNIQUE above ignores NULL communities; the default's versions are unique too.
        sa.Index(
            "uq_points_policies_default_version",
            "version",
            unique=True,
            sqlite_where=sa.text("community_id IS NULL"),
            postgresql_where=sa.text("community_id IS NULL"),
        ),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint(
            "hours_cap_minutes >= 1 AND hours_cap_minutes <= 1440", name="hours_cap_range"
        ),
        sa.CheckConstraint("base_rate >= 0 AND base_rate <= 1000", name="base_rate_range"),
        sa.CheckConstraint(
            "unrated_multiplier_percent >= 0 AND unrated_multiplier_percent <= 500",
            name="unrated_range",
        ),
        sa.CheckConstraint(
            "rating_window_days >= 1 AND rating_window_days <= 90", name="rating_window_range"
        ),
        sa.CheckConstraint(
            "redemption_hold_days >= 1 AND redemption_hold_days <= 365", name="hold_days_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: NULL: the default policy for communities without their own.
    community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    version: Mapped[int] = mapped_column(default=1)
    #: Minutes of one participant in one delivery that count (8 h by default).
    hours_cap_minutes: Mapped[int] = mapped_column(default=480)
    #: Points per hour before the rating multiplier.
    base_rate: Mapped[int] = mapped_column(default=10)
    #: ``[[min average score, multiplier], ...]``; averages below every row earn 0.
    multipliers: Mapped[Any] = mapped_column(sa.JSON, nullable=False, default=default_multipliers)
    #: Multiplier (percent) when the secretary settles a delivery nobody rated.
    unrated_multiplier_percent: Mapped[int] = mapped_column(default=100)
    rating_window_days: Mapped[int] = mapped_column(default=7)
    expiry_rule: Mapped[ExpiryRule] = mapped_column(
        str_enum(ExpiryRule, "expiry_rule"), default=ExpiryRule.NONE
    )
    #: Days an unfulfilled redemption keeps its points held before it expires.
    redemption_hold_days: Mapped[int] = mapped_column(default=14)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<PointsPolicy {self.id} community={self.community_id} v{self.version}>"
