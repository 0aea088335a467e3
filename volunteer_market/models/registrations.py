"""Self-registrations (在职党员到社区报到): a request the community's secretary decides."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow
from .users import Role

#: The longest reason of a rejection.
MAX_REJECT_REASON = 500


class RegistrationStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Registration(Model):
    """A person's request to join a community as a member or resident.

    No account exists while it is pending (so nobody signs in before the secretary
    approves); the approval creates it (or completes an imported person's account) with
    the password chosen here. ``status_token_hash`` is the SHA-256 of the link that
    shows the applicant the outcome.
    """

    __tablename__ = "registrations"
    __table_args__ = (
        sa.CheckConstraint("role IN ('member', 'resident')", name="member_or_resident"),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name="decided_when_not_pending"
        ),
        # One waiting request per phone number.
        sa.Index(
            "uq_registrations_pending_phone",
            "phone",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_registrations_community_status", "community_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(sa.String(32))
    display_name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    role: Mapped[Role] = mapped_column(str_enum(Role, "registration_role"))
    home_unit: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[RegistrationStatus] = mapped_column(
        str_enum(RegistrationStatus, "registration_status"), default=RegistrationStatus.PENDING
    )
    reason: Mapped[str | None] = mapped_column(sa.String(MAX_REJECT_REASON))
    status_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The account, once approved.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
