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

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow

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


class EvaluationStatus(enum.StrEnum):
    CLOSED = "closed"  # the year is closed, rows frozen, not yet public
    IN_NOTICE = "in_notice"  # published for the notice period (公示)
    FINAL = "final"  # notice over, every objection answered


class Evaluation(Model):
    """One community's annual evaluation: the year closed, published, finalized."""

    __tablename__ = "evaluations"
    __table_args__ = (
        sa.UniqueConstraint("community_id", "year", name="one_per_year"),
        sa.CheckConstraint(
            "(status = 'closed' AND published_at IS NULL AND finalized_at IS NULL)"
            " OR (status = 'in_notice' AND published_at IS NOT NULL"
            " AND notice_ends_at IS NOT NULL AND finalized_at IS NULL)"
            " OR (status = 'final' AND published_at IS NOT NULL AND finalized_at IS NOT NULL)",
            name="status_shape",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    year: Mapped[int]
    status: Mapped[EvaluationStatus] = mapped_column(
        str_enum(EvaluationStatus, "evaluation_status"), default=EvaluationStatus.CLOSED
    )
    closed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    notice_days: Mapped[int | None]
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notice_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EvaluationRow(Model):
    """A member's frozen figures of a closed year (names and figures only)."""

    __tablename__ = "evaluation_rows"
    __table_args__ = (sa.UniqueConstraint("evaluation_id", "user_id", name="one_per_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(sa.ForeignKey("evaluations.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(sa.String(64))
    display_name: Mapped[str] = mapped_column(sa.String(100))
    home_unit: Mapped[str] = mapped_column(sa.String(255), default="")
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(10, 1))
    deliveries: Mapped[int]
    projects_led: Mapped[int]
    projects_joined: Mapped[int]
    average_score: Mapped[Decimal | None] = mapped_column(sa.Numeric(4, 2))
    #: Points earned in the year plus the upheld corrections (``correction``).
    points_earned: Mapped[int] = mapped_column(sa.BigInteger)
    points_spent: Mapped[int] = mapped_column(sa.BigInteger)
    points_expired: Mapped[int] = mapped_column(sa.BigInteger)
    #: Sum of the upheld objections' adjustments (posted through the ledger).
    correction: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rank_community: Mapped[int | None]
    rank_street: Mapped[int | None]


class ObjectionStatus(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class Objection(Model):
    """An objection (异议) filed during the notice, answered by the secretary."""

    __tablename__ = "evaluation_objections"
    __table_args__ = (
        sa.CheckConstraint(
            "(status = 'open' AND answer IS NULL AND answered_at IS NULL)"
            " OR (status <> 'open' AND answer IS NOT NULL AND answered_at IS NOT NULL)",
            name="answer_shape",
        ),
        sa.CheckConstraint(
            "amount IS NULL OR (status = 'upheld' AND amount <> 0)", name="amount_when_upheld"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(sa.ForeignKey("evaluations.id"), index=True)
    filed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: The member whose row it concerns (None: the list as a whole).
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(sa.String(MAX_OBJECTION_TEXT))
    status: Mapped[ObjectionStatus] = mapped_column(
        str_enum(ObjectionStatus, "objection_status"), default=ObjectionStatus.OPEN
    )
    answer: Mapped[str | None] = mapped_column(sa.String(MAX_OBJECTION_TEXT))
    #: Points adjusted by an upheld objection (the ledger transaction below).
    amount: Mapped[int | None]
    transaction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    answered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


#: Length of a certificate's verification code (hex characters of its SHA-256).
CODE_LENGTH = 16


class ServiceCertificate(Model):
    """A service certificate (服务证明) issued for a member's year in a community.

    ``code`` is the first 16 hex digits (upper case) of ``digest``, the SHA-256 of
    the certificate's canonical content (community, member, home unit, year, hours,
    deliveries, points, issue date): it carries no personal data, and anyone holding a
    certificate can check it on the public verification page. The same content gives
    the same code (one row).
    """

    __tablename__ = "service_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(CODE_LENGTH), unique=True)
    digest: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    year: Mapped[int]
    #: The figures as printed (hours, deliveries, points, period, names).
    content: Mapped[dict] = mapped_column(sa.JSON)
    issued_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
