"""Appeals (申诉) against a rating or a points award.

Only ``services/appeals.py`` writes this table. What the database guarantees:

* an appeal concerns exactly one rating or one ledger transaction (CHECK), and
  ``subject`` names it (``rating:<id>`` / ``transaction:<id>``);
* an appellant has at most one open appeal per subject (partial UNIQUE index);
* a decided appeal has its decider, time and reason; only an upheld one may carry the
  transaction it posted (CHECKs). A decision is one conditional UPDATE from ``open``.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow

#: Longest appeal reason and decision reason, in characters.
APPEAL_TEXT_MAX = 500


class AppealStatus(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class Appeal(Model):
    __tablename__ = "appeals"
    __table_args__ = (
        sa.CheckConstraint("(rating_id IS NULL) <> (transaction_id IS NULL)", name="one_subject"),
        sa.CheckConstraint("(status = 'open') = (decided_at IS NULL)", name="decided_when_closed"),
        sa.CheckConstraint(
            "result_transaction_id IS NULL OR status = 'upheld'", name="result_only_upheld"
        ),
        sa.Index(
            "uq_appeals_open_subject",
            "appellant_id",
            "subject",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
        sa.Index("ix_appeals_community_status", "community_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    appellant_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: ``rating:<id>`` or ``transaction:<id>`` (the partial unique index's key).
    subject: Mapped[str] = mapped_column(sa.String(40))
    rating_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ratings.id"))
    transaction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    #: The delivery the subject belongs to (a rating's, an earn's), if any.
    delivery_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deliveries.id"))
    #: The member whose points the appeal concerns (None: a resident's appeal of a
    #: proxy rating, which concerns every participant of the delivery).
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(APPEAL_TEXT_MAX))
    status: Mapped[AppealStatus] = mapped_column(
        str_enum(AppealStatus, "appeal_status"), default=AppealStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(sa.String(APPEAL_TEXT_MAX))
    #: The points of an upheld appeal's adjusting transaction (None: a reversal).
    amount: Mapped[int | None]
    #: The reversing or adjusting transaction an upheld appeal posted.
    result_transaction_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ledger_transactions.id")
    )

    def __repr__(self) -> str:
        return f"<Appeal {self.id} {self.subject} {self.status}>"
