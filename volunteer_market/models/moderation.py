"""Moderation of rating comments and call-backs (回访) of proxy ratings.

Only ``services/moderation.py`` and ``services/callbacks.py`` write these tables (and
the ``comment_hidden_*`` columns of ``ratings``). What the database guarantees:

* a member reports one rating's comment at most once (UNIQUE ``(rating_id, reporter_id)``);
  a report is open exactly while it has no resolver and time (CHECK);
* a hidden comment has its hider, time and reason together (CHECK on ``ratings``);
  the text itself is never deleted;
* a proxy rating gets at most one final call-back outcome (``confirmed`` or
  ``disputed``; partial UNIQUE index); ``unreachable`` attempts may repeat.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow

#: Longest report reason, hiding reason and call-back note, in characters.
MODERATION_TEXT_MAX = 500


class ReportStatus(enum.StrEnum):
    OPEN = "open"
    HIDDEN = "hidden"
    DISMISSED = "dismissed"


class CallbackOutcome(enum.StrEnum):
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    UNREACHABLE = "unreachable"


class CommentReport(Model):
    """A participant's report of a rating's comment, and the secretary's resolution."""

    __tablename__ = "comment_reports"
    __table_args__ = (
        sa.UniqueConstraint("rating_id", "reporter_id"),
        sa.CheckConstraint(
            "(status = 'open') = (resolved_at IS NULL)"
            " AND (resolved_at IS NULL) = (resolved_by_id IS NULL)",
            name="resolved_when_closed",
        ),
        sa.Index("ix_comment_reports_community_status", "community_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(sa.ForeignKey("ratings.id"))
    #: Copied from the delivery so the secretary's queue needs no join.
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    reporter_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(MODERATION_TEXT_MAX))
    status: Mapped[ReportStatus] = mapped_column(
        str_enum(ReportStatus, "comment_report_status"), default=ReportStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_reason: Mapped[str | None] = mapped_column(sa.String(MODERATION_TEXT_MAX))

    def __repr__(self) -> str:
        return f"<CommentReport {self.id} rating={self.rating_id} {self.status}>"


class RatingCallback(Model):
    """One call-back (回访) of a proxy rating by the community's secretary."""

    __tablename__ = "rating_callbacks"
    __table_args__ = (
        sa.Index(
            "uq_rating_callbacks_final",
            "rating_id",
            unique=True,
            sqlite_where=sa.text("outcome <> 'unreachable'"),
            postgresql_where=sa.text("outcome <> 'unreachable'"),
        ),
        sa.Index("ix_rating_callbacks_community_created", "community_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(sa.ForeignKey("ratings.id"), index=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    caller_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    outcome: Mapped[CallbackOutcome] = mapped_column(str_enum(CallbackOutcome, "callback_outcome"))
    note: Mapped[str | None] = mapped_column(sa.String(MODERATION_TEXT_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<RatingCallback {self.id} rating={self.rating_id} {self.outcome}>"
