"""Sessions of a project (time, place, slots), their sign-ups with a waitlist, the
attendance that feeds the delivery, and each person's private calendar feed.

A session's ``signed_up_count`` is moved only by conditional UPDATEs under the session's
row lock and the database refuses more than ``slots`` (CHECK); one member holds at most
one sign-up row per session (UNIQUE), re-used when they sign up again after cancelling.
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

#: Most places one session offers (a community hall, not a stadium).
MAX_SLOTS = 500
#: Longest place description.
PLACE_MAX = 200


class SessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class SignupStatus(enum.StrEnum):
    SIGNED_UP = "signed_up"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class ProjectSession(Model):
    """One dated session of a project ("the Saturday haircuts, 9-11, community hall")."""

    __tablename__ = "project_sessions"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.CheckConstraint(f"slots >= 1 AND slots <= {MAX_SLOTS}", name="slots_range"),
        sa.CheckConstraint(
            "signed_up_count >= 0 AND signed_up_count <= slots", name="signed_up_range"
        ),
        sa.Index("ix_project_sessions_project_starts", "project_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    #: Copied from the project so community queries need no join.
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    place: Mapped[str] = mapped_column(sa.String(PLACE_MAX))
    slots: Mapped[int]
    #: Sign-ups holding a place; moved only by conditional UPDATEs (never above ``slots``).
    signed_up_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[SessionStatus] = mapped_column(
        str_enum(SessionStatus, "session_status"), default=SessionStatus.SCHEDULED
    )
    #: Random per-session key of the rotating check-in code (never shown).
    check_in_key: Mapped[str] = mapped_column(sa.String(64))
    #: The delivery made from this session's attendance (at most one).
    delivery_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deliveries.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[Project] = relationship(lazy="raise_on_sql")

    @property
    def minutes(self) -> int:
        """Length of the session in whole minutes."""
        return int((self.ends_at - self.starts_at).total_seconds() // 60)

    def __repr__(self) -> str:
        return f"<ProjectSession {self.id} project={self.project_id} {self.status}>"


class SessionSignup(Model):
    """A member's place (or place in the queue) in a session."""

    __tablename__ = "session_signups"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "user_id"),
        sa.Index("ix_session_signups_queue", "session_id", "status", "queued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("project_sessions.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    status: Mapped[SignupStatus] = mapped_column(str_enum(SignupStatus, "signup_status"))
    #: When the member (last) signed up: the waitlist is served in this order.
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the member holding a place was reminded of the session (once; NULL: not yet).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="raise_on_sql")


class SessionAttendance(Model):
    """A member's check-in (and check-out) at a session, by code or marked by the owner."""

    __tablename__ = "session_attendance"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "user_id"),
        sa.CheckConstraint(
            "checked_out_at IS NULL OR checked_out_at >= checked_in_at", name="out_after_in"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("project_sessions.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The owner who marked the member present (NULL: the member used the code).
    marked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    user: Mapped[User] = relationship(lazy="raise_on_sql", foreign_keys=[user_id])


class CalendarFeed(Model):
    """The generation of a person's private calendar-feed token (reset = generation + 1).

    The token itself is an HMAC of the user id and the generation under the application
    key, so nothing secret is stored and the person can always see their current link.
    """

    __tablename__ = "calendar_feeds"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(default=1)
    reset_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
