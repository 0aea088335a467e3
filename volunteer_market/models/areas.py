"""The area tree: district (区) > street (街道) > community (社区) > grid (网格/小区)."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from ..zones import DEFAULT_TIMEZONE
from .types import UTCDateTime, str_enum, utcnow


class AreaKind(enum.StrEnum):
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"


#: The kind a child of each kind must be (the tree has exactly four levels).
CHILD_KIND: dict[AreaKind | None, AreaKind] = {
    None: AreaKind.DISTRICT,
    AreaKind.DISTRICT: AreaKind.STREET,
    AreaKind.STREET: AreaKind.COMMUNITY,
    AreaKind.COMMUNITY: AreaKind.GRID,
}


class Area(Model):
    __tablename__ = "areas"
    __table_args__ = (
        sa.UniqueConstraint("parent_id", "name", name="uq_areas_parent_name"),
        sa.CheckConstraint("depth >= 0 AND depth <= 3", name="depth_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[AreaKind] = mapped_column(str_enum(AreaKind, "area_kind"))
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    #: Materialized path of ids, e.g. ``/1/4/17/``; a subtree is ``path LIKE '/1/4/%'``.
    path: Mapped[str] = mapped_column(sa.String(255), unique=True, default="")
    depth: Mapped[int] = mapped_column(default=0)
    #: Time zone for periods (rankings, reports); communities inherit it by default.
    timezone: Mapped[str] = mapped_column(sa.String(64), default=DEFAULT_TIMEZONE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    parent: Mapped[Area | None] = relationship(remote_side=[id], lazy="raise_on_sql")

    def ancestor_ids(self) -> list[int]:
        """Return the ids on the path from the root down to this area, inclusive."""
        return [int(p) for p in self.path.strip("/").split("/") if p]

    def covers(self, other: Area) -> bool:
        """Return True if ``other`` is this area or lies in its subtree."""
        return other.path.startswith(self.path)

    def __repr__(self) -> str:
        return f"<Area {self.id} {self.kind} {self.name}>"
