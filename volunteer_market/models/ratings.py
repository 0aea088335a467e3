"""Ratings of deliveries, the members' replies, and each delivery's settlement.

Only ``services/ratings.py`` and ``services/settlement.py`` write these tables
(``services/moderation.py`` the ``comment_hidden_*`` columns).
What the database itself guarantees, on SQLite and PostgreSQL:

* a score lies between 1 and 5 (CHECK); one rating per beneficiary per delivery
  (UNIQUE ``(delivery_id, beneficiary_id)``);
* a hidden comment has its hider, time and reason together (CHECK ``hidden_shape``);
* a rating is a proxy exactly when someone other than the beneficiary entered it,
  and a code rating is never a proxy (CHECK);
* a participant replies at most once to a rating (UNIQUE ``(rating_id, member_id)``);
* a delivery is settled at most once (UNIQUE ``settlements.delivery_id``), and each
  participant appears once in it (UNIQUE ``(settlement_id, user_id)``);
* a settlement line has a ledger transaction exactly when its points are positive
  (CHECK): a participant whose points compute to 0 gets no transaction, and the
  line is where their hours are recorded.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .types import UTCDateTime, utcnow

#: Longest rating comment and reply, in characters.
COMMENT_MAX = 500


class Rating(Model):
    """A beneficiary's score (1-5) and optional comment for one delivery."""

    __tablename__ = "ratings"
    __table_args__ = (
        sa.UniqueConstraint("delivery_id", "beneficiary_id"),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
        sa.CheckConstraint(
            "(is_proxy AND entered_by_id <> beneficiary_id)"
            " OR (NOT is_proxy AND entered_by_id = beneficiary_id)",
            name="proxy_shape",
        ),
        sa.CheckConstraint("NOT (is_proxy AND via_code)", name="code_not_proxy"),
        sa.CheckConstraint(
            "(comment_hidden_at IS NULL) = (comment_hidden_by_id IS NULL)"
            " AND (comment_hidden_at IS NULL) = (comment_hidden_reason IS NULL)",
            name="hidden_shape",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("deliveries.id"))
    #: The resident the rating belongs to (a beneficiary of the delivery).
    beneficiary_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: Who entered it last: the resident, or the grid worker / secretary for a proxy.
    entered_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    score: Mapped[int] = mapped_column(sa.SmallInteger)
    comment: Mapped[str | None] = mapped_column(sa.String(COMMENT_MAX))
    #: Entered by a grid worker or secretary for a resident without a phone.
    is_proxy: Mapped[bool] = mapped_column(default=False)
    #: Entered with the one-time code or QR token, without a password.
    via_code: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The comment hidden by the community's secretary (``services/moderation.py``):
    #: kept, shown to nobody else; NULL when visible. History in the audit log.
    comment_hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    comment_hidden_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    comment_hidden_reason: Mapped[str | None] = mapped_column(sa.String(COMMENT_MAX))

    replies: Mapped[list[RatingReply]] = relationship(
        back_populates="rating", lazy="raise_on_sql", order_by="RatingReply.id"
    )

    def __repr__(self) -> str:
        return f"<Rating {self.id} delivery={self.delivery_id} score={self.score}>"


class RatingReply(Model):
    """A participant's one reply to a rating of their delivery."""

    __tablename__ = "rating_replies"
    __table_args__ = (sa.UniqueConstraint("rating_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(sa.ForeignKey("ratings.id"))
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    text: Mapped[str] = mapped_column(sa.String(COMMENT_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    rating: Mapped[Rating] = relationship(back_populates="replies", lazy="raise_on_sql")


class Settlement(Model):
    """The one settlement of a delivery: the inputs of the arithmetic and who settled."""

    __tablename__ = "settlements"
    __table_args__ = (
        sa.CheckConstraint("ratings_count >= 0", name="ratings_count_nonnegative"),
        sa.CheckConstraint(
            "(ratings_count = 0 AND score_sum = 0 AND average_score IS NULL)"
            " OR (ratings_count > 0 AND score_sum BETWEEN ratings_count AND 5 * ratings_count"
            " AND average_score IS NOT NULL)",
            name="scores_shape",
        ),
        sa.CheckConstraint(
            "NOT confirmed_unrated OR ratings_count = 0", name="unrated_has_no_ratings"
        ),
        sa.CheckConstraint("multiplier >= 0", name="multiplier_nonnegative"),
        sa.CheckConstraint("total_points >= 0 AND total_minutes >= 0", name="totals_nonnegative"),
        sa.Index("ix_settlements_community_id_settled_at", "community_id", "settled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("deliveries.id"), unique=True)
    #: Copied from the delivery so community queries need no join.
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    #: The points policy version in force at settlement (a later version never
    #: rewrites this settlement).
    policy_id: Mapped[int] = mapped_column(sa.ForeignKey("points_policies.id"))
    policy_version: Mapped[int]
    ratings_count: Mapped[int]
    #: Sum of the scores: ``score_sum / ratings_count`` is the exact average.
    score_sum: Mapped[int] = mapped_column(default=0)
    #: The average rounded to 4 places, for display and reports (None: nobody rated).
    average_score: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 4))
    #: The rating multiplier applied (e.g. 1.2), to 4 places.
    multiplier: Mapped[Decimal] = mapped_column(sa.Numeric(8, 4))
    #: Nobody rated and the secretary confirmed settling anyway.
    confirmed_unrated: Mapped[bool] = mapped_column(default=False)
    total_points: Mapped[int] = mapped_column(default=0)
    total_minutes: Mapped[int] = mapped_column(default=0)
    #: The secretary who settled; NULL when every beneficiary rated (automatic).
    settled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    settled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    postings: Mapped[list[SettlementPosting]] = relationship(
        back_populates="settlement", lazy="raise_on_sql", order_by="SettlementPosting.id"
    )

    def __repr__(self) -> str:
        return f"<Settlement {self.id} delivery={self.delivery_id} points={self.total_points}>"


class SettlementPosting(Model):
    """One participant's line of a settlement: minutes from the delivery, points, posting."""

    __tablename__ = "settlement_postings"
    __table_args__ = (
        sa.UniqueConstraint("settlement_id", "user_id"),
        sa.CheckConstraint(
            "minutes > 0 AND counted_minutes >= 0 AND counted_minutes <= minutes",
            name="minutes_shape",
        ),
        sa.CheckConstraint(
            "(points > 0 AND transaction_id IS NOT NULL)"
            " OR (points = 0 AND transaction_id IS NULL)",
            name="posted_when_positive",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(sa.ForeignKey("settlements.id"))
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("deliveries.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: The participant's minutes in the delivery record (the only source of hours).
    minutes: Mapped[int]
    #: The minutes that counted for points (capped by the policy).
    counted_minutes: Mapped[int]
    points: Mapped[int]
    #: The earn posted for this participant (NULL when ``points`` is 0).
    transaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ledger_transactions.id"), unique=True
    )

    settlement: Mapped[Settlement] = relationship(back_populates="postings", lazy="raise_on_sql")
