"""Areas: create, look up and query subtrees by materialized path."""

from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..models import CHILD_KIND, Area, AreaKind, User
from ..zones import DEFAULT_TIMEZONE
from . import audit, permissions
from .errors import Conflict, NotFound, ValidationFailed


def get_area(area_id: int) -> Area:
    """Return the area or raise :class:`NotFound`."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound("Area not found.")
    return area


def create_area(
    actor: User | None,
    *,
    name: str,
    kind: AreaKind,
    parent_id: int | None,
    timezone: str | None = None,
) -> Area:
    """Create an area under ``parent_id``; the kind must be the next level down.

    :raises Forbidden: unless the actor is an admin (``actor=None`` is the CLI/demo).
    :raises ValidationFailed: wrong kind for the parent or unknown parent.
    :raises Conflict: a sibling already has this name.
    """
    if actor is not None:
        permissions.require(actor, "area.create")
    parent = None
    if parent_id is not None:
        parent = db.session.get(Area, parent_id)
        if parent is None:
            raise ValidationFailed("Unknown parent area.", errors={"parent_id": ["Unknown area."]})
    expected = CHILD_KIND.get(parent.kind if parent else None)
    if expected is None or kind != expected:
        raise ValidationFailed(
            "An area of this kind cannot be placed here.",
            errors={"kind": [f"Expected {expected.value if expected else 'nothing'} here."]},
        )
    dup = db.session.execute(
        sa.select(Area.id).where(Area.parent_id == parent_id, Area.name == name)
    ).first()
    if dup is not None:
        raise Conflict("An area with this name already exists here.")
    area = Area(
        name=name,
        kind=kind,
        parent_id=parent_id,
        depth=(parent.depth + 1) if parent else 0,
        timezone=timezone or (parent.timezone if parent else DEFAULT_TIMEZONE),
        path=f"tmp:{name}:{parent_id}",
    )
    db.session.add(area)
    db.session.flush()
    area.path = f"{parent.path if parent else '/'}{area.id}/"
    db.session.flush()
    audit.record(
        actor, "area.create", "area", area.id, area_id=area.id, detail={"kind": kind.value}
    )
    return area


def subtree_condition(area: Area) -> sa.ColumnElement[bool]:
    """Return a WHERE condition selecting ``area`` and everything below it."""
    return Area.path.startswith(area.path, autoescape=True)


def subtree_ids(area: Area) -> list[int]:
    """Return the ids of ``area`` and its whole subtree in one query."""
    return list(db.session.scalars(sa.select(Area.id).where(subtree_condition(area))))


def list_areas(
    *, parent_id: int | None = None, kind: AreaKind | None = None, under: Area | None = None
) -> sa.Select[Area]:
    """Return a SELECT of areas filtered by parent, kind or subtree, ordered by path."""
    stmt = sa.select(Area).order_by(Area.depth, Area.id)
    if parent_id is not None:
        stmt = stmt.where(Area.parent_id == parent_id)
    if kind is not None:
        stmt = stmt.where(Area.kind == kind)
    if under is not None:
        stmt = stmt.where(subtree_condition(under))
    return stmt
