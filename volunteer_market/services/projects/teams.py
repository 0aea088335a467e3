"""Project teams: members ask to join, the owner approves or declines, members leave.

Team size (owner + active members) lives on the project and is moved only by a
conditional ``UPDATE projects SET team_size = team_size + 1 WHERE team_size <
capacity``, so concurrent approvals can never overfill a team on either engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import Project, ProjectStatus, TeamMembership, TeamStatus, User, utcnow
from .. import audit, permissions
from ..errors import Conflict, NotFound

S = ProjectStatus

#: States in which members may ask to join and the owner may answer.
TEAM_OPEN_STATUSES = frozenset({S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED})


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
    if cast(sa.CursorResult[Any], result).rowcount != 1:
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
    if cast(sa.CursorResult[Any], grown).rowcount != 1:
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
