"""Micro-projects (微项目): propose, edit, the reviewed lifecycle, teams, duplicate hints.

Design overview
---------------
* The lifecycle is one table, :data:`TRANSITIONS`: ``(state, action) -> Transition(next,
  by, comment_required)``. ``by`` says who may take the step: the owner (policy rule
  ``project.own``) or the community's secretary (``project.review``). Checks run in this
  order, so every refusal has one clear status:

  1. the caller cannot see the project → :class:`NotFound` (404);
  2. the caller holds no role that takes this action in any state → :class:`Forbidden`;
  3. no cell for ``(state, action)`` → :class:`Conflict` (409) naming the state;
  4. the caller holds none of the cell's roles → :class:`Forbidden`;
  5. a required comment is missing → :class:`ValidationFailed` (422).

* ``approved`` is the live state (DESIGN's "active/approved"): teams form, menu services
  are ordered and deliveries recorded while a project is approved. There is no separate
  ``active`` state because nothing anybody acts on happens between the two.
* Every state change is a conditional ``UPDATE ... WHERE status = :current`` (a racing
  second change gets 409), a :class:`ProjectTransition` row, an audit entry and a
  notification to the owner; a submission also notifies the community's secretaries.
* Team size (owner + active members) lives on the project and is moved only by a
  conditional ``UPDATE projects SET team_size = team_size + 1 WHERE team_size < capacity``,
  so concurrent approvals can never overfill a team on either engine.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import (
    Area,
    AreaKind,
    Category,
    Need,
    NeedStatus,
    Project,
    ProjectAction,
    ProjectMode,
    ProjectStatus,
    ProjectTransition,
    Role,
    RoleGrant,
    TeamMembership,
    TeamStatus,
    User,
    utcnow,
)
from . import audit, permissions
from .errors import Conflict, Forbidden, NotFound, ValidationFailed

S = ProjectStatus
A = ProjectAction


class By(enum.StrEnum):
    """Who may take a step of the lifecycle."""

    OWNER = "owner"
    SECRETARY = "secretary"


#: The policy rule that answers each :class:`By`.
BY_RULE: dict[By, str] = {By.OWNER: "project.own", By.SECRETARY: "project.review"}


@dataclass(frozen=True)
class Transition:
    next: ProjectStatus
    by: frozenset[By]
    comment_required: bool = False


_OWNER = frozenset({By.OWNER})
_SECRETARY = frozenset({By.SECRETARY})
_EITHER = frozenset({By.OWNER, By.SECRETARY})

#: The whole lifecycle. ``edit`` keeps the state (it is here so that editing is
#: allowed and refused by the same table); every other action changes it.
TRANSITIONS: dict[tuple[ProjectStatus, ProjectAction], Transition] = {
    (S.DRAFT, A.EDIT): Transition(S.DRAFT, _OWNER),
    (S.CHANGES_REQUESTED, A.EDIT): Transition(S.CHANGES_REQUESTED, _OWNER),
    (S.DRAFT, A.SUBMIT): Transition(S.SUBMITTED, _OWNER),
    (S.CHANGES_REQUESTED, A.SUBMIT): Transition(S.SUBMITTED, _OWNER),
    (S.SUBMITTED, A.WITHDRAW): Transition(S.DRAFT, _OWNER),
    (S.SUBMITTED, A.APPROVE): Transition(S.APPROVED, _SECRETARY),
    (S.SUBMITTED, A.REJECT): Transition(S.REJECTED, _SECRETARY, comment_required=True),
    (S.SUBMITTED, A.REQUEST_CHANGES): Transition(
        S.CHANGES_REQUESTED, _SECRETARY, comment_required=True
    ),
    (S.DRAFT, A.CANCEL): Transition(S.CANCELLED, _OWNER),
    (S.CHANGES_REQUESTED, A.CANCEL): Transition(S.CANCELLED, _OWNER),
    (S.APPROVED, A.CANCEL): Transition(S.CANCELLED, _EITHER),
    (S.APPROVED, A.COMPLETE): Transition(S.COMPLETED, _EITHER),
}

#: Roles that take each action in at least one state.
ACTION_ROLES: dict[ProjectAction, frozenset[By]] = {
    action: frozenset().union(*(t.by for (_s, a), t in TRANSITIONS.items() if a == action))
    for action in ProjectAction
}

#: Review decisions of ``POST /projects/{id}/review`` and their actions.
DECISIONS: dict[str, ProjectAction] = {
    "approve": A.APPROVE,
    "reject": A.REJECT,
    "request_changes": A.REQUEST_CHANGES,
}

#: States in which members may ask to join and the owner may answer.
TEAM_OPEN_STATUSES = frozenset({S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED})
#: States whose projects are shown in the duplicate hint.
SIMILAR_STATUSES = (S.SUBMITTED, S.APPROVED)
SIMILAR_THRESHOLD = 0.4
COMMENT_MAX = 1000

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


# --- reading ------------------------------------------------------------------


def get_project(project_id: int) -> Project:
    """Return the project (community and owner loaded) or raise :class:`NotFound`."""
    stmt = (
        sa.select(Project)
        .where(Project.id == project_id)
        .options(joinedload(Project.community), joinedload(Project.owner))
    )
    project = db.session.execute(stmt).unique().scalar_one_or_none()
    if project is None:
        raise NotFound("Project not found.")
    return project


def get_visible_project(actor: User, project_id: int) -> Project:
    """Return the project if ``actor`` may see it.

    :raises NotFound: it does not exist or the actor may not see it.
    """
    project = get_project(project_id)
    if not permissions.may(actor, "project.view", project):
        raise NotFound("Project not found.")
    return project


def _officer_community_ids(actor: User) -> sa.Select[tuple[int]] | None:
    areas = permissions.grant_areas(actor, [Role.OFFICER])
    if not areas:
        return None
    return sa.select(Area.id).where(
        Area.kind == AreaKind.COMMUNITY,
        sa.or_(*[Area.path.startswith(a.path, autoescape=True) for a in areas]),
    )


def visible_condition(actor: User) -> sa.ColumnElement[bool]:
    """Return the SQL twin of the ``project.view`` rule for lists."""
    if permissions.is_admin(actor):
        return sa.true()
    conds: list[sa.ColumnElement[bool]] = [
        Project.status.in_(permissions.PROJECT_PUBLIC_STATUSES),
        Project.owner_id == actor.id,
        Project.id.in_(
            sa.select(TeamMembership.project_id).where(TeamMembership.user_id == actor.id)
        ),
    ]
    staff = permissions.communities_of(actor, [Role.SECRETARY, Role.GRID_WORKER])
    if staff:
        conds.append(Project.community_id.in_(staff))
    officer = _officer_community_ids(actor)
    if officer is not None:
        conds.append(Project.community_id.in_(officer))
    member = permissions.communities_of(actor, [Role.MEMBER])
    if member:
        conds.append(
            sa.and_(
                Project.community_id.in_(member),
                Project.status.in_(permissions.PROJECT_COMMUNITY_STATUSES),
            )
        )
    return sa.or_(*conds)


def list_projects(
    actor: User,
    *,
    community_id: int | None = None,
    status: ProjectStatus | None = None,
    category: Category | None = None,
    mode: ProjectMode | None = None,
    q: str | None = None,
    owner_id: int | None = None,
    member_id: int | None = None,
) -> sa.Select[tuple[Project]]:
    """Return a SELECT of the projects ``actor`` may see, filtered, newest first.

    Owner and community are loaded in the same statement (no N+1).
    """
    stmt = (
        sa.select(Project)
        .where(visible_condition(actor))
        .options(joinedload(Project.owner), joinedload(Project.community))
        .order_by(Project.created_at.desc(), Project.id.desc())
    )
    if community_id is not None:
        stmt = stmt.where(Project.community_id == community_id)
    if status is not None:
        stmt = stmt.where(Project.status == status)
    if category is not None:
        stmt = stmt.where(Project.category == category)
    if mode is not None:
        stmt = stmt.where(Project.mode == mode)
    if q:
        needle = q.strip().lower()
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(Project.title).contains(needle, autoescape=True),
                sa.func.lower(Project.description).contains(needle, autoescape=True),
            )
        )
    if owner_id is not None:
        stmt = stmt.where(Project.owner_id == owner_id)
    if member_id is not None:
        stmt = stmt.where(
            sa.or_(
                Project.owner_id == member_id,
                Project.id.in_(
                    sa.select(TeamMembership.project_id).where(
                        TeamMembership.user_id == member_id,
                        TeamMembership.status.in_([TeamStatus.PENDING, TeamStatus.ACTIVE]),
                    )
                ),
            )
        )
    return stmt


def review_queue(actor: User) -> list[Project]:
    """Return the submitted projects of the communities ``actor`` is secretary of."""
    communities = permissions.communities_of(actor, [Role.SECRETARY])
    if not communities:
        return []
    stmt = (
        sa.select(Project)
        .where(Project.community_id.in_(communities), Project.status == S.SUBMITTED)
        .options(joinedload(Project.owner), joinedload(Project.community))
        .order_by(Project.updated_at, Project.id)
    )
    return list(db.session.execute(stmt).unique().scalars())


def transitions_of(project: Project) -> list[ProjectTransition]:
    """Return the project's lifecycle history, oldest first."""
    return list(
        db.session.execute(
            sa.select(ProjectTransition)
            .where(ProjectTransition.project_id == project.id)
            .options(joinedload(ProjectTransition.actor))
            .order_by(ProjectTransition.at, ProjectTransition.id)
        ).scalars()
    )


# --- duplicate hint -----------------------------------------------------------


def _normalise(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).lower()
    return "".join(ch for ch in text if ch.isalnum())


def _grams(title: str) -> set[str]:
    text = _normalise(title)
    if len(text) < 2:
        return {text} if text else set()
    return {text[i : i + 2] for i in range(len(text) - 1)}


def title_similarity(a: str, b: str) -> float:
    """Return the Dice coefficient of the character bigrams of two titles (0..1).

    Bigrams suit Chinese titles (no spaces) and work for Latin text too; computed in
    Python so it behaves the same on SQLite and PostgreSQL.
    """
    ga, gb = _grams(a), _grams(b)
    if not ga or not gb:
        return 0.0
    return 2 * len(ga & gb) / (len(ga) + len(gb))


def similar_projects(
    actor: User,
    community: Area,
    title: str,
    *,
    exclude_id: int | None = None,
    limit: int = 5,
) -> list[tuple[Project, float]]:
    """Return submitted/approved projects of ``community`` whose titles resemble ``title``.

    :raises Forbidden: the actor is not of that community (nor reads it).
    """
    permissions.require(actor, "project.similar", community)
    rows = db.session.execute(
        sa.select(Project).where(
            Project.community_id == community.id, Project.status.in_(SIMILAR_STATUSES)
        )
    ).scalars()
    scored = []
    for project in rows:
        if project.id == exclude_id:
            continue
        score = title_similarity(title, project.title)
        if score >= SIMILAR_THRESHOLD:
            scored.append((project, round(score, 3)))
    scored.sort(key=lambda ps: (-ps[1], -ps[0].id))
    return scored[:limit]


# --- create and edit ----------------------------------------------------------


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


def _cell(actor: User, project: Project, action: ProjectAction) -> Transition:
    """Apply the check order of the module docstring; return the table cell."""
    if not permissions.may(actor, "project.view", project):
        raise NotFound("Project not found.")
    roles = ACTION_ROLES[action]
    if not any(permissions.may(actor, BY_RULE[b], project) for b in roles):
        raise Forbidden("You are not allowed to do this.", action=f"project.{action.value}")
    cell = TRANSITIONS.get((project.status, action))
    if cell is None:
        raise Conflict(
            f"A project that is {project.status.value} cannot be {_past(action)}.",
            state=project.status.value,
        )
    if not any(permissions.may(actor, BY_RULE[b], project) for b in cell.by):
        raise Forbidden("You are not allowed to do this.", action=f"project.{action.value}")
    return cell


def _past(action: ProjectAction) -> str:
    return {
        A.EDIT: "edited",
        A.SUBMIT: "submitted",
        A.WITHDRAW: "withdrawn",
        A.APPROVE: "approved",
        A.REJECT: "rejected",
        A.REQUEST_CHANGES: "sent back for changes",
        A.COMPLETE: "completed",
        A.CANCEL: "cancelled",
    }[action]


def update_project(actor: User, project: Project, changes: dict[str, Any]) -> Project:
    """Edit a project in ``draft`` or ``changes_requested`` (owner only).

    :raises Conflict: the project is in another state.
    :raises ValidationFailed: unknown fields, schedule out of order, capacity below team size.
    """
    _cell(actor, project, A.EDIT)
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
    """Raise unless ``actor`` may edit ``project`` now (see the check order above)."""
    _cell(actor, project, A.EDIT)


def set_cover(actor: User, project: Project, name: str | None) -> Project:
    """Set (or clear) the cover image file name; editing rules apply."""
    _cell(actor, project, A.EDIT)
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


# --- lifecycle ----------------------------------------------------------------


def transition(
    actor: User, project: Project, action: ProjectAction, comment: str | None = None
) -> Project:
    """Take one step of the lifecycle table.

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: the actor holds no role for this step.
    :raises Conflict: no such step from the current state (or it changed meanwhile).
    :raises ValidationFailed: a required comment is missing or too long.
    """
    if action == A.EDIT:
        raise ValueError("use update_project for edits")
    cell = _cell(actor, project, action)
    comment = (comment or "").strip() or None
    if cell.comment_required and not comment:
        raise ValidationFailed("A comment is required.", errors={"comment": ["Required."]})
    if comment and len(comment) > COMMENT_MAX:
        raise ValidationFailed(
            "The comment is too long.", errors={"comment": [f"At most {COMMENT_MAX} characters."]}
        )
    current = project.status
    result = db.session.execute(
        sa.update(Project)
        .where(Project.id == project.id, Project.status == current)
        .values(status=cell.next, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.expire(project)
        raise Conflict("The project changed meanwhile; reload and try again.")
    db.session.expire(project, ["status", "updated_at"])
    db.session.add(
        ProjectTransition(
            project_id=project.id,
            from_status=current,
            to_status=cell.next,
            action=action,
            actor_id=actor.id,
            comment=comment,
        )
    )
    if cell.next in (S.CANCELLED, S.COMPLETED) and current == S.APPROVED:
        _release_project_needs(actor, project)
    detail = {"from": current.value, "to": cell.next.value}
    if comment:
        detail["comment"] = comment
    audit.record(
        actor,
        f"project.{action.value}",
        "project",
        project.id,
        area_id=project.community_id,
        detail=detail,
    )
    params = {"title": project.title, "status": cell.next.value, "action": action.value}
    if comment:
        params["comment"] = comment
    audit.notify(
        project.owner_id,
        f"project.{action.value}",
        object_type="project",
        object_id=project.id,
        params=params,
    )
    if action == A.SUBMIT:
        for secretary_id in _secretary_ids(project.community_id):
            audit.notify(
                secretary_id,
                "project.awaiting_review",
                object_type="project",
                object_id=project.id,
                params={"title": project.title},
            )
    db.session.flush()
    return project


def review(actor: User, project: Project, decision: str, comment: str | None = None) -> Project:
    """Approve, reject or request changes (the community's secretary).

    :raises ValidationFailed: unknown decision; missing comment for reject/request_changes.
    """
    action = DECISIONS.get(decision)
    if action is None:
        raise ValidationFailed(
            "Unknown decision.", errors={"decision": ["approve, reject or request_changes."]}
        )
    return transition(actor, project, action, comment)


def _secretary_ids(community_id: int) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(RoleGrant.user_id).where(
                RoleGrant.area_id == community_id,
                RoleGrant.role == Role.SECRETARY,
                RoleGrant.revoked_at.is_(None),
            )
        )
    )


def _release_project_needs(actor: User, project: Project) -> None:
    """Put needs given to a project that stops back on the board (open)."""
    needs = db.session.execute(
        sa.select(Need.id, Need.beneficiary_id, Need.title).where(
            Need.project_id == project.id, Need.status == NeedStatus.DISPATCHED
        )
    ).all()
    if not needs:
        return
    db.session.execute(
        sa.update(Need)
        .where(Need.id.in_([n.id for n in needs]), Need.status == NeedStatus.DISPATCHED)
        .values(status=NeedStatus.OPEN, project_id=None, assignee_id=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    for need in needs:
        audit.record(
            actor,
            "need.release",
            "need",
            need.id,
            area_id=project.community_id,
            detail={"reason": "project_closed", "project_id": project.id},
        )
        audit.notify(
            need.beneficiary_id,
            "need.released",
            object_type="need",
            object_id=need.id,
            params={"title": need.title},
        )


# --- teams --------------------------------------------------------------------


def team_of(project: Project, statuses: Iterable[TeamStatus] | None = None) -> list[TeamMembership]:
    """Return the project's memberships (users loaded), oldest first."""
    stmt = (
        sa.select(TeamMembership)
        .where(TeamMembership.project_id == project.id)
        .options(joinedload(TeamMembership.user))
        .order_by(TeamMembership.requested_at, TeamMembership.id)
    )
    if statuses is not None:
        stmt = stmt.where(TeamMembership.status.in_(list(statuses)))
    return list(db.session.execute(stmt).scalars())


def _membership(project_id: int, user_id: int) -> TeamMembership | None:
    return db.session.execute(
        sa.select(TeamMembership).where(
            TeamMembership.project_id == project_id, TeamMembership.user_id == user_id
        )
    ).scalar_one_or_none()


def _require_team_open(project: Project) -> None:
    if project.status not in TEAM_OPEN_STATUSES:
        raise Conflict(
            f"The team of a project that is {project.status.value} is closed.",
            state=project.status.value,
        )


def _set_member_status(
    membership: TeamMembership, expected: Iterable[TeamStatus], new: TeamStatus, actor: User
) -> None:
    """Move a membership by a conditional UPDATE; 409 if someone else moved it first."""
    values: dict[str, Any] = {"status": new}
    if new in (TeamStatus.ACTIVE, TeamStatus.DECLINED):
        values.update(decided_at=utcnow(), decided_by_id=actor.id)
    if new == TeamStatus.PENDING:
        values.update(requested_at=utcnow(), decided_at=None, decided_by_id=None)
    result = db.session.execute(
        sa.update(TeamMembership)
        .where(TeamMembership.id == membership.id, TeamMembership.status.in_(list(expected)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(membership)
    if result.rowcount != 1:
        raise Conflict("The team request changed meanwhile; reload and try again.")


def request_join(actor: User, project: Project) -> TeamMembership:
    """Ask to join the project's team (pending until the owner answers).

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: the actor is not a member of the project's community.
    :raises Conflict: team closed or full, already on it or already asked.
    """
    if not permissions.may(actor, "project.view", project):
        raise NotFound("Project not found.")
    if actor.id == project.owner_id:
        raise Conflict("You lead this project.")
    permissions.require(actor, "team.join", project)
    _require_team_open(project)
    if project.team_size >= project.capacity:
        raise Conflict("The team is full.")
    existing = _membership(project.id, actor.id)
    if existing is not None:
        if existing.status in (TeamStatus.PENDING, TeamStatus.ACTIVE):
            raise Conflict(
                "You are already on this team."
                if existing.status == TeamStatus.ACTIVE
                else "You have already asked to join."
            )
        _set_member_status(
            existing, [TeamStatus.DECLINED, TeamStatus.LEFT], TeamStatus.PENDING, actor
        )
        membership = existing
    else:
        membership = TeamMembership(
            project_id=project.id, user_id=actor.id, status=TeamStatus.PENDING
        )
        db.session.add(membership)
        try:
            with db.session.begin_nested():
                db.session.flush()
        except sa.exc.IntegrityError:
            raise Conflict("You have already asked to join.") from None
    audit.record(actor, "team.request", "project", project.id, area_id=project.community_id)
    audit.notify(
        project.owner_id,
        "team.requested",
        object_type="project",
        object_id=project.id,
        params={"title": project.title, "member": actor.display_name},
    )
    db.session.flush()
    return membership


def _pending_of(project: Project, user_id: int) -> TeamMembership:
    membership = _membership(project.id, user_id)
    if membership is None:
        raise NotFound("No team request from this user.")
    if membership.status != TeamStatus.PENDING:
        raise Conflict(f"The request is {membership.status.value}, not pending.")
    return membership


def approve_member(actor: User, project: Project, user_id: int) -> TeamMembership:
    """Accept a pending request; the team (owner included) never exceeds capacity.

    :raises Forbidden: the actor is not the owner.
    :raises NotFound: no request from that user.
    :raises Conflict: team closed or full, request not pending.
    """
    if not permissions.may(actor, "project.view", project):
        raise NotFound("Project not found.")
    permissions.require(actor, "team.manage", project)
    _require_team_open(project)
    membership = _pending_of(project, user_id)
    _set_member_status(membership, [TeamStatus.PENDING], TeamStatus.ACTIVE, actor)
    grown = db.session.execute(
        sa.update(Project)
        .where(Project.id == project.id, Project.team_size < Project.capacity)
        .values(team_size=Project.team_size + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(project, ["team_size"])
    if grown.rowcount != 1:
        raise Conflict("The team is full.")
    _team_event(actor, project, user_id, "team.approve", "team.approved")
    return membership


def decline_member(actor: User, project: Project, user_id: int) -> TeamMembership:
    """Decline a pending request (owner)."""
    if not permissions.may(actor, "project.view", project):
        raise NotFound("Project not found.")
    permissions.require(actor, "team.manage", project)
    membership = _pending_of(project, user_id)
    _set_member_status(membership, [TeamStatus.PENDING], TeamStatus.DECLINED, actor)
    _team_event(actor, project, user_id, "team.decline", "team.declined")
    return membership


def leave_team(actor: User, project: Project) -> TeamMembership:
    """Leave the team, or withdraw a pending request.

    :raises Conflict: the owner cannot leave; the actor is not on the team.
    """
    if not permissions.may(actor, "project.view", project):
        raise NotFound("Project not found.")
    if actor.id == project.owner_id:
        raise Conflict("The owner cannot leave; cancel the project instead.")
    membership = _membership(project.id, actor.id)
    if membership is None or membership.status not in (TeamStatus.PENDING, TeamStatus.ACTIVE):
        raise Conflict("You are not on this team.")
    was_active = membership.status == TeamStatus.ACTIVE
    _set_member_status(membership, [membership.status], TeamStatus.LEFT, actor)
    if was_active:
        db.session.execute(
            sa.update(Project)
            .where(Project.id == project.id, Project.team_size > 1)
            .values(team_size=Project.team_size - 1)
            .execution_options(synchronize_session=False)
        )
        db.session.expire(project, ["team_size"])
    audit.record(actor, "team.leave", "project", project.id, area_id=project.community_id)
    audit.notify(
        project.owner_id,
        "team.left",
        object_type="project",
        object_id=project.id,
        params={"title": project.title, "member": actor.display_name},
    )
    db.session.flush()
    return membership


def _team_event(actor: User, project: Project, user_id: int, action: str, kind: str) -> None:
    audit.record(
        actor,
        action,
        "project",
        project.id,
        area_id=project.community_id,
        detail={"user_id": user_id},
    )
    audit.notify(
        user_id, kind, object_type="project", object_id=project.id, params={"title": project.title}
    )
    db.session.flush()
