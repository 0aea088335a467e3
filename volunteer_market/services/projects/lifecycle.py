"""The reviewed lifecycle of a project: the transition table and the steps it allows.

:data:`TRANSITIONS` maps ``(state, action)`` to ``Transition(next, by,
comment_required)``; :func:`allowed_transition` applies the check order of the package
overview (404, 403, 409, 403) and returns the cell; :func:`transition` takes the step
(conditional UPDATE, history row, audit, notifications) and :func:`review` maps a
secretary's decision to its action. Editing is refused and allowed by the same table
(``edit`` keeps the state; ``services/projects/editing.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    Need,
    NeedStatus,
    Project,
    ProjectAction,
    ProjectStatus,
    ProjectTransition,
    Role,
    RoleGrant,
    User,
    utcnow,
)
from .. import audit, permissions
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed

S = ProjectStatus
A = ProjectAction

COMMENT_MAX = 1000


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


def allowed_transition(actor: User, project: Project, action: ProjectAction) -> Transition:
    """Apply the check order of the package overview; return the table cell.

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: the actor holds no role for this action, or none for this cell.
    :raises Conflict: no such step from the current state.
    """
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
    cell = allowed_transition(actor, project, action)
    comment = _clean_comment(cell, comment)
    current = project.status
    _move(project, current, cell.next)
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
    _announce(actor, project, action, current, cell.next, comment)
    db.session.flush()
    return project


def _clean_comment(cell: Transition, comment: str | None) -> str | None:
    """Return the stripped comment (None if empty).

    :raises ValidationFailed: missing where the cell requires one, or too long.
    """
    comment = (comment or "").strip() or None
    if cell.comment_required and not comment:
        raise ValidationFailed("A comment is required.", errors={"comment": ["Required."]})
    if comment and len(comment) > COMMENT_MAX:
        raise ValidationFailed(
            "The comment is too long.", errors={"comment": [f"At most {COMMENT_MAX} characters."]}
        )
    return comment


def _move(project: Project, current: ProjectStatus, new: ProjectStatus) -> None:
    """Change the state by ``UPDATE ... WHERE status = :current``; 409 if it moved meanwhile."""
    result = db.session.execute(
        sa.update(Project)
        .where(Project.id == project.id, Project.status == current)
        .values(status=new, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if cast(sa.CursorResult[Any], result).rowcount != 1:
        db.session.expire(project)
        raise Conflict("The project changed meanwhile; reload and try again.")
    db.session.expire(project, ["status", "updated_at"])


def _announce(
    actor: User,
    project: Project,
    action: ProjectAction,
    current: ProjectStatus,
    new: ProjectStatus,
    comment: str | None,
) -> None:
    """Audit the step, tell the owner, and on a submission the community's secretaries."""
    detail = {"from": current.value, "to": new.value}
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
    params = {"title": project.title, "status": new.value, "action": action.value}
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
