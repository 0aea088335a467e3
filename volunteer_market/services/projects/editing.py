"""Proposing and editing projects: create a draft, change its fields, set its cover.

Editing is allowed and refused by the lifecycle table (``edit`` in ``draft`` and
``changes_requested``, owner only): see :func:`.lifecycle.allowed_transition`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ...extensions import db
from ...models import (
    Area,
    AreaKind,
    Category,
    Project,
    ProjectAction,
    ProjectMode,
    ProjectStatus,
    User,
)
from .. import audit, permissions
from ..errors import ValidationFailed
from .lifecycle import allowed_transition

S = ProjectStatus
A = ProjectAction

EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "category",
        "mode",
        "capacity",
        "planned_minutes",
        "starts_at",
        "ends_at",
        "skills",
        "target_groups",
    }
)


def _community(community_id: int) -> Area:
    area = db.session.get(Area, community_id)
    if area is None or area.kind != AreaKind.COMMUNITY:
        raise ValidationFailed("Unknown community.", errors={"community_id": ["Not a community."]})
    return area


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _check_schedule(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationFailed(
            "The end must be after the start.", errors={"ends_at": ["Must be after starts_at."]}
        )


def _tags(values: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or ():
        v = value.strip()
        if v and v not in out:
            out.append(v)
    return out


def create_project(
    actor: User,
    *,
    community_id: int,
    title: str,
    description: str,
    category: Category,
    mode: ProjectMode,
    capacity: int,
    planned_minutes: int,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    skills: Sequence[str] | None = None,
    target_groups: Sequence[str] | None = None,
) -> Project:
    """Propose a project (``draft``) in a community the actor is a member of.

    :raises ValidationFailed: unknown community, schedule out of order.
    :raises Forbidden: the actor is not a member of that community.
    """
    community = _community(community_id)
    permissions.require(actor, "project.create", community)
    _check_schedule(starts_at, ends_at)
    starts_at, ends_at = _utc(starts_at), _utc(ends_at)
    project = Project(
        community_id=community.id,
        owner_id=actor.id,
        title=title,
        description=description,
        category=Category(category),
        mode=ProjectMode(mode),
        capacity=capacity,
        team_size=1,
        planned_minutes=planned_minutes,
        starts_at=starts_at,
        ends_at=ends_at,
        skills=_tags(skills),
        target_groups=_tags(target_groups),
        status=S.DRAFT,
    )
    db.session.add(project)
    db.session.flush()
    project.community = community
    project.owner = actor
    audit.record(
        actor,
        "project.create",
        "project",
        project.id,
        area_id=community.id,
        detail={"status": S.DRAFT.value},
    )
    return project


def update_project(actor: User, project: Project, changes: dict[str, Any]) -> Project:
    """Edit a project in ``draft`` or ``changes_requested`` (owner only).

    :raises Conflict: the project is in another state.
    :raises ValidationFailed: unknown fields, schedule out of order, capacity below team size.
    """
    allowed_transition(actor, project, A.EDIT)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", errors={name: ["Unknown field."] for name in sorted(unknown)}
        )
    coerce: dict[str, Any] = {
        "starts_at": _utc,
        "ends_at": _utc,
        "category": Category,
        "mode": ProjectMode,
        "skills": _tags,
        "target_groups": _tags,
    }
    changes = {
        name: coerce[name](value) if name in coerce else value for name, value in changes.items()
    }
    starts_at = changes.get("starts_at", project.starts_at)
    ends_at = changes.get("ends_at", project.ends_at)
    _check_schedule(starts_at, ends_at)
    if "capacity" in changes and changes["capacity"] < project.team_size:
        raise ValidationFailed(
            "Capacity below the current team size.",
            errors={"capacity": [f"At least the current team size ({project.team_size})."]},
        )
    changed = []
    for name, value in changes.items():
        if getattr(project, name) != value:
            setattr(project, name, value)
            changed.append(name)
    if changed:
        db.session.flush()
        audit.record(
            actor,
            "project.edit",
            "project",
            project.id,
            area_id=project.community_id,
            detail={"fields": sorted(changed)},
        )
    return project


def check_editable(actor: User, project: Project) -> None:
    """Raise unless ``actor`` may edit ``project`` now (the lifecycle's check order)."""
    allowed_transition(actor, project, A.EDIT)


def set_cover(actor: User, project: Project, name: str | None) -> Project:
    """Set (or clear) the cover image file name; editing rules apply."""
    allowed_transition(actor, project, A.EDIT)
    project.cover_path = name
    db.session.flush()
    audit.record(
        actor,
        "project.cover",
        "project",
        project.id,
        area_id=project.community_id,
        detail={"set": name is not None},
    )
    return project
