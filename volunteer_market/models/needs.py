"""Residents' needs (群众需求 / 微心愿): posted, dispatched (派单), claimed (抢单), closed."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .areas import Area
from .projects import Category, Project
from .types import UTCDateTime, str_enum, utcnow
from .users import User


class NeedStatus(enum.StrEnum):
    OPEN = "open"  # on the board, anyone in the community may claim it
    DISPATCHED = "dispatched"  # assigned by the secretary (or ordered from a menu project)
    CLAIMED = "claimed"  # taken by a member
    CLOSED = "closed"  # fulfilled by a delivery
    CANCELLED = "cancelled"


class Need(Model):
    __tablename__ = "needs"
    __table_args__ = (
        sa.CheckConstraint(
            "status <> 'claimed' OR assignee_id IS NOT NULL", name="claimed_has_assignee"
        ),
        sa.CheckConstraint(
            "status <> 'dispatched' OR assignee_id IS NOT NULL OR project_id IS NOT NULL",
            name="dispatched_has_target",
        ),
        sa.CheckConstraint(
            "status <> 'open' OR (assignee_id IS NULL AND project_id IS NULL)",
            name="open_is_unassigned",
        ),
        sa.Index("ix_needs_community_status", "community_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    #: The resident's grid inside the community, when known (for per-grid reports).
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    title: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    category: Mapped[Category] = mapped_column(str_enum(Category, "category"))
    posted_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: The resident who needs the service.
    beneficiary_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: True when a grid worker posted it for the resident (``on_behalf_of``).
    on_behalf: Mapped[bool] = mapped_column(default=False)
    status: Mapped[NeedStatus] = mapped_column(
        str_enum(NeedStatus, "need_status"), default=NeedStatus.OPEN
    )
    #: Set when dispatched to a project or ordered from a ``menu`` project.
    project_id: Mapped[int | None] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    #: Set when dispatched to a member or claimed by one.
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    community: Mapped[Area] = relationship(lazy="raise_on_sql", foreign_keys=[community_id])
    beneficiary: Mapped[User] = relationship(lazy="raise_on_sql", foreign_keys=[beneficiary_id])
    assignee: Mapped[User | None] = relationship(lazy="raise_on_sql", foreign_keys=[assignee_id])
    project: Mapped[Project | None] = relationship(lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<Need {self.id} {self.status} {self.title}>"
