"""Annual evaluation (年度考核): yearly rollups, the frozen list, its public notice (公示).

Only ``services/evaluations/`` writes these tables. The rollups are kept inside the
ledger posting's transaction (``services.ledger.posting._after_post``), like the
ranking rollups, so the annual report reads neither the ledger nor the deliveries.

* :class:`AnnualStat` -- per (community, year, member): settled deliveries with an earn,
  the ratings of those deliveries (count and sum, for the average score), points spent
  (redemptions fulfilled) and points expired. Points earned and hours come from the
  ranking rollups (``ranking_members``, period ``YYYY``).
* :class:`AnnualProject` -- per (community, year, member, project): deliveries the
  member earned in; projects led and joined are counted from these rows.
* :class:`Evaluation` -- one community's year: ``closed`` -> ``in_notice`` -> ``final``.
* :class:`EvaluationRow` -- a member's frozen figures (names and figures only).
* :class:`Objection` -- filed during the notice; answered ``upheld`` or ``dismissed``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model

#: Longest objection text and answer.
MAX_OBJECTION_TEXT = 1000
#: Shortest and longest notice period (days).
MIN_NOTICE_DAYS = 1
MAX_NOTICE_DAYS = 60
#: The default notice period (公示, DESIGN.md).
DEFAULT_NOTICE_DAYS = 7
#: Earliest year an evaluation may cover.
MIN_YEAR = 2000


class AnnualStat(Model):
    """A member's yearly figures in one community that the ranking rollups do not hold."""

    __tablename__ = "annual_stats"
    __table_args__ = (
        sa.CheckConstraint(
            "deliveries >= 0 AND ratings_count >= 0 AND score_sum >= 0"
            " AND points_spent >= 0 AND points_expired >= 0",
            name="nonnegative",
        ),
    )

    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    #: Deliveries the member earned points in (an earn's reversal subtracts one).
    deliveries: Mapped[int] = mapped_column(default=0)
    #: Ratings of those deliveries: the average score is ``score_sum / ratings_count``.
    ratings_count: Mapped[int] = mapped_column(default=0)
    score_sum: Mapped[int] = mapped_column(default=0)
    points_spent: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    points_expired: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class AnnualProject(Model):
    """How many deliveries of one project a member earned in, per community and year."""

    __tablename__ = "annual_projects"
    __table_args__ = (sa.CheckConstraint("deliveries >= 0", name="deliveries_nonnegative"),)

    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), primary_key=True)
    deliveries: Mapped[int] = mapped_column(default=0)
