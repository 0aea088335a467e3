"""Micro-projects (微项目), their micro-teams (微团队) and the audited lifecycle."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .areas import Area
from .types import UTCDateTime, str_enum, utcnow
from .users import User


class Category(enum.StrEnum):
    """Service categories shared by projects and needs (labels live in the web layer)."""

    ELDERLY = "elderly"  # 助老助残
    HEALTH = "health"  # 医疗健康
    LEGAL = "legal"  # 法律服务
    CULTURE = "culture"  # 文化文艺
    ENVIRONMENT = "environment"  # 环境美化
    EDUCATION = "education"  # 教育辅导
    ERRAND = "errand"  # 代办跑腿
    REPAIR = "repair"  # 维修便民
    OTHER = "other"  # 其他


class ProjectMode(enum.StrEnum):
    EVENT = "event"  # one-off or scheduled activity
    MENU = "menu"  # a standing service offer residents order (自设服务菜单)


class ProjectStatus(enum.StrEnum):
    """Lifecycle states; ``approved`` is the live state (DESIGN's "active/approved")."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ProjectAction(enum.StrEnum):
    """Actions of the transition table in ``services/projects.py``."""

    EDIT = "edit"
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"
    COMPLETE = "complete"
    CANCEL = "cancel"


class TeamStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DECLINED = "declined"
    LEFT = "left"


#: Most people one project may have on its team (the owner included).
MAX_CAPACITY = 300


class Project(Model):
    __tablename__ = "projects"
    __table_args__ = (
        sa.CheckConstraint(f"capacity >= 1 AND capacity <= {MAX_CAPACITY}", name="capacity_range"),
        sa.CheckConstraint("team_size >= 1 AND team_size <= capacity", name="team_size_range"),
        sa.CheckConstraint("planned_minutes > 0", name="planned_minutes_positive"),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at", name="schedule_order"
        ),
        sa.Index("ix_projects_community_status", "community_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"))
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.Text)
    category: Mapped[Category] = mapped_column(str_enum(Category, "category"))
    mode: Mapped[ProjectMode] = mapped_column(str_enum(ProjectMode, "project_mode"))
    #: Team size limit, the owner included.
    capacity: Mapped[int]
    #: Current team size: the owner plus active members; moved only by conditional UPDATEs.
    team_size: Mapped[int] = mapped_column(default=1)
    #: Planned service time in whole minutes (the API speaks hours).
    planned_minutes: Mapped[int]
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Lists of short strings, e.g. ["理发"], ["空巢老人", "残疾人"].
    skills: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    target_groups: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    #: File name under ``instance/uploads`` (random), never a client-supplied path.
    cover_path: Mapped[str | None] = mapped_column(sa.String(100))
    status: Mapped[ProjectStatus] = mapped_column(
        str_enum(ProjectStatus, "project_status"), default=ProjectStatus.DRAFT
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship(lazy="raise_on_sql", foreign_keys=[owner_id])
    community: Mapped[Area] = relationship(lazy="raise_on_sql")

    @property
    def planned_hours(self) -> float:
        return self.planned_minutes / 60

    def __repr__(self) -> str:
        return f"<Project {self.id} {self.status} {self.title}>"


class ProjectTransition(Model):
    """One step of a project's lifecycle: who moved it from where to where, and why."""

    __tablename__ = "project_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    from_status: Mapped[ProjectStatus] = mapped_column(str_enum(ProjectStatus, "from_status"))
    to_status: Mapped[ProjectStatus] = mapped_column(str_enum(ProjectStatus, "to_status"))
    action: Mapped[ProjectAction] = mapped_column(str_enum(ProjectAction, "project_action"))
    actor_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    actor: Mapped[User] = relationship(lazy="raise_on_sql")


class TeamMembership(Model):
    """A member's place on a project's team (the owner has none: the owner is implicit)."""

    __tablename__ = "team_memberships"
    __table_args__ = (sa.UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    status: Mapped[TeamStatus] = mapped_column(
        str_enum(TeamStatus, "team_status"), default=TeamStatus.PENDING
    )
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    user: Mapped[User] = relationship(lazy="raise_on_sql", foreign_keys=[user_id])
