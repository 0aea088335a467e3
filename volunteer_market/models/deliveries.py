"""Deliveries: one recorded service session with its participants and beneficiaries.

One delivery record feeds points, rankings, certificates and the annual evaluation.
Ratings and settlement (the next feature) build on :class:`Delivery` and
:class:`DeliveryBeneficiary`; the raw rating codes are never stored, only SHA-256
hashes (see ``services/deliveries.py``).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .projects import Project
from .types import UTCDateTime, str_enum, utcnow
from .users import User

#: Database cap on one participant's minutes in one delivery (8 h); the points
#: policy may cap lower, never higher.
MAX_PARTICIPANT_MINUTES = 480


class DeliveryStatus(enum.StrEnum):
    AWAITING_RATINGS = "awaiting_ratings"
    SETTLED = "settled"
    CANCELLED = "cancelled"


class Delivery(Model):
    __tablename__ = "deliveries"
    __table_args__ = (
        sa.CheckConstraint("ended_at > started_at", name="ends_after_start"),
        sa.Index("ix_deliveries_community_status", "community_id", "status"),
        #: A community's recent sessions (integrity signals read a bounded window).
        sa.Index("ix_deliveries_community_started", "community_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    #: Copied from the project so community queries need no join.
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The need this session fulfilled (closed by it), if any.
    need_id: Mapped[int | None] = mapped_column(sa.ForeignKey("needs.id"), unique=True)
    #: File name under ``instance/uploads`` (random), never a client-supplied path.
    photo_path: Mapped[str | None] = mapped_column(sa.String(100))
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.AWAITING_RATINGS
    )
    #: Ratings are accepted until this moment (``ended_at`` + the rating window).
    rating_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[Project] = relationship(lazy="raise_on_sql")
    participants: Mapped[list[DeliveryParticipant]] = relationship(
        back_populates="delivery", lazy="raise_on_sql", order_by="DeliveryParticipant.id"
    )
    beneficiaries: Mapped[list[DeliveryBeneficiary]] = relationship(
        back_populates="delivery", lazy="raise_on_sql", order_by="DeliveryBeneficiary.id"
    )
    no_shows: Mapped[list[DeliveryNoShow]] = relationship(
        back_populates="delivery", lazy="raise_on_sql", order_by="DeliveryNoShow.id"
    )

    @property
    def minutes(self) -> int:
        """Length of the session in whole minutes."""
        return int((self.ended_at - self.started_at).total_seconds() // 60)

    def __repr__(self) -> str:
        return f"<Delivery {self.id} project={self.project_id} {self.status}>"


class DeliveryParticipant(Model):
    """A member who served in the session, with the minutes they served."""

    __tablename__ = "delivery_participants"
    __table_args__ = (
        sa.UniqueConstraint("delivery_id", "user_id"),
        sa.CheckConstraint(
            f"minutes > 0 AND minutes <= {MAX_PARTICIPANT_MINUTES}", name="minutes_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("deliveries.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    minutes: Mapped[int]

    delivery: Mapped[Delivery] = relationship(back_populates="participants", lazy="raise_on_sql")
    user: Mapped[User] = relationship(lazy="raise_on_sql")

    @property
    def hours(self) -> float:
        return self.minutes / 60


class DeliveryBeneficiary(Model):
    """A resident who received the service; may hold a one-time rating code (a slip).

    The code is issued on a rating slip by the community's secretary or a grid worker
    who did not serve in the delivery (``services/deliveries/slips.py``), never to a
    participant; NULL digests mean no slip is out (rate from the own session).
    """

    __tablename__ = "delivery_beneficiaries"
    __table_args__ = (sa.UniqueConstraint("delivery_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("deliveries.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: sha256 hex of the six-digit code (unique among unused codes of open deliveries).
    rating_code_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    #: sha256 hex of the long random token in the QR URL ``/rate/<token>``.
    rating_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    #: Set by any rating of this beneficiary (the code, if any, is used up with it).
    code_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Who issued the slip now out, and when (NULL: no slip, or issued by the system).
    code_issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    code_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    delivery: Mapped[Delivery] = relationship(back_populates="beneficiaries", lazy="raise_on_sql")
    user: Mapped[User] = relationship(lazy="raise_on_sql", foreign_keys=[user_id])


class DeliveryNoShow(Model):
    """A team member who signed up for the session and did not come."""

    __tablename__ = "delivery_no_shows"
    __table_args__ = (sa.UniqueConstraint("delivery_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("deliveries.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)

    delivery: Mapped[Delivery] = relationship(back_populates="no_shows", lazy="raise_on_sql")
    user: Mapped[User] = relationship(lazy="raise_on_sql")
