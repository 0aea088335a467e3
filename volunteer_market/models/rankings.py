"""Ranking rollups (排行榜) and the per-area exposure setting.

Only the package ``services/rankings/`` writes these tables, inside the ledger posting's
transaction (``services.ledger.posting._after_post``), so they are exact with no staleness;
``rankings rebuild`` recomputes them from the ledger and ``ledger verify`` checks
they agree. Design notes: ``docs/rankings.md``.

* :class:`RankingMember` -- per (area, period, member): points earned (earn minus
  reversed earn), service minutes, and ``reached_at`` (when the member reached the
  current total: the tie order inside a rank). The top-N index walks one
  (area, period) in display order; the primary key answers "my row".
* :class:`RankingScoreCount` -- per (area, period, points): how many members have
  exactly that total. "My rank" and "total" sum these buckets instead of counting
  member rows, so their cost follows the number of distinct totals, not members.
* :class:`RankingTeam` -- per (area, period, project): a team's points and minutes.
* :class:`RankingSettings` -- how an area's rankings are shown to residents and
  members (full list, top-N or tiers); the nearest setting up the tree applies.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow
from .users import RoleGrant, User

#: ``all``, ``2026``, ``2026-Q4`` or ``2026-11``.
PERIOD_KEY_LENGTH = 7
#: A valid period key (the ``period_key`` columns hold nothing else).
PERIOD_RE = re.compile(r"^(?:all|[1-9]\d{3}(?:-Q[1-4]|-(?:0[1-9]|1[0-2]))?)$")
#: Most rows of one ranking page.
MAX_PER_PAGE = 100
#: Largest N of a top-N exposure setting (``ranking_settings.top_n``).
MAX_TOP_N = 1000


class RankingMember(Model):
    """A member's service record in one area (and its subtree) and one period."""

    __tablename__ = "ranking_members"
    __table_args__ = (
        sa.CheckConstraint("points >= 0", name="points_nonnegative"),
        sa.CheckConstraint("minutes >= 0", name="minutes_nonnegative"),
    )

    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    #: ``all`` / ``YYYY`` / ``YYYY-Qn`` / ``YYYY-MM`` in the community's time zone.
    period_key: Mapped[str] = mapped_column(sa.String(PERIOD_KEY_LENGTH), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    #: Earned points: + earn, - reversal of an earn; redemption and expiry never touch it.
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Service minutes of those earns (reversals subtract the original's minutes).
    minutes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Time of the last posting that changed ``points`` (the latest contributing
    #: transaction's ``created_at``): who reached a tied total first ranks first.
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: False while the member is excluded from this area's boards: suspended, or their
    #: member role there has ended (``services.rankings`` keeps it current: the
    #: posting that creates the row sets it, and a change of ``users.is_active`` or of
    #: a member grant refreshes the member's rows in the same transaction). Excluded
    #: rows are not counted in the score buckets.
    eligible: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())


#: Top-N in display order (points desc, reached first, user id) with the row data
#: needed, and "rows with more points" as a range of the same index.
sa.Index(
    "ix_ranking_members_top",
    RankingMember.area_id,
    RankingMember.period_key,
    RankingMember.points.desc(),
    RankingMember.reached_at,
    RankingMember.user_id,
)
#: A member's own rows (monthly chart; rebuild/verify by member range).
sa.Index(
    "ix_ranking_members_user",
    RankingMember.user_id,
    RankingMember.period_key,
    RankingMember.area_id,
)


class RankingScoreCount(Model):
    """How many eligible members of an area have exactly ``points`` (> 0) in a period."""

    __tablename__ = "ranking_score_counts"
    __table_args__ = (
        sa.CheckConstraint("points > 0", name="points_positive"),
        sa.CheckConstraint("members >= 0", name="members_nonnegative"),
        #: SQLite: the primary key is the table, so a range sum reads no second b-tree.
        {"sqlite_with_rowid": False},
    )

    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    period_key: Mapped[str] = mapped_column(sa.String(PERIOD_KEY_LENGTH), primary_key=True)
    points: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    members: Mapped[int] = mapped_column(sa.BigInteger, default=0)


#: PostgreSQL: sums of a range of buckets as an index-only scan (SQLite stores the
#: table itself in primary-key order, see ``sqlite_with_rowid`` above).
sa.Index(
    "ix_ranking_score_counts_cover",
    RankingScoreCount.area_id,
    RankingScoreCount.period_key,
    RankingScoreCount.points,
    postgresql_include=["members"],
).ddl_if(dialect="postgresql")


class RankingTeam(Model):
    """A project team's points and minutes in one area (and its subtree) and period."""

    __tablename__ = "ranking_teams"
    __table_args__ = (
        sa.CheckConstraint("points >= 0", name="points_nonnegative"),
        sa.CheckConstraint("minutes >= 0", name="minutes_nonnegative"),
    )

    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    period_key: Mapped[str] = mapped_column(sa.String(PERIOD_KEY_LENGTH), primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), primary_key=True)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    minutes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


sa.Index(
    "ix_ranking_teams_top",
    RankingTeam.area_id,
    RankingTeam.period_key,
    RankingTeam.points.desc(),
    RankingTeam.reached_at,
    RankingTeam.project_id,
)


class Exposure(enum.StrEnum):
    FULL = "full"  # the whole list (the default)
    TOP_N = "top_n"  # only ranks 1..N
    TIERS = "tiers"  # 金牌/银牌/铜牌 by percentile, no exact ranks or points


class RankingSettings(Model):
    """How rankings of an area's subtree are shown to residents and members.

    Secretaries and officers over the area always see the full list. An area
    without a row inherits its nearest ancestor's setting; none at all = full.
    """

    __tablename__ = "ranking_settings"
    __table_args__ = (
        sa.CheckConstraint(
            f"(exposure = 'top_n' AND top_n BETWEEN 1 AND {MAX_TOP_N})"
            " OR (exposure <> 'top_n' AND top_n IS NULL)",
            name="top_n_shape",
        ),
        sa.CheckConstraint(
            "0 < gold_pct AND gold_pct < silver_pct AND silver_pct < bronze_pct"
            " AND bronze_pct <= 100",
            name="tier_order",
        ),
    )

    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    exposure: Mapped[Exposure] = mapped_column(
        str_enum(Exposure, "ranking_exposure"), default=Exposure.FULL
    )
    top_n: Mapped[int | None]
    #: Cumulative percentiles by rank: 金牌 within the top ``gold_pct`` %, 银牌 within
    #: ``silver_pct`` %, 铜牌 within ``bronze_pct`` %; the rest are not listed.
    gold_pct: Mapped[int] = mapped_column(default=10)
    silver_pct: Mapped[int] = mapped_column(default=30)
    bronze_pct: Mapped[int] = mapped_column(default=60)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- indexes on other aggregates' tables for the exclusions -----------------------------
#: Suspended users are few: found through this index, never by scanning users (the
#: flags' migration 0004, the generator, ``ledger verify``).
sa.Index("ix_users_is_active", User.is_active)
#: Ended grants of an area by role (partial: only revoked grants; covering). Migration
#: 0003 replaced ``ix_role_grants_area_role_revoked`` with it for the read-time
#: exclusion look-up that migration 0004 replaced by ``RankingMember.eligible``.
sa.Index(
    "ix_role_grants_ended",
    RoleGrant.area_id,
    RoleGrant.role,
    RoleGrant.user_id,
    RoleGrant.revoked_at,
    sqlite_where=sa.text("revoked_at IS NOT NULL"),
    postgresql_where=sa.text("revoked_at IS NOT NULL"),
)
