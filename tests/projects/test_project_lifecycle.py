"""The project lifecycle, cell by cell: every state x action, with every kind of actor."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    AuditEntry,
    Notification,
    ProjectAction,
    ProjectStatus,
    ProjectTransition,
)
from volunteer_market.services import projects as project_service
from volunteer_market.services.errors import Conflict, Forbidden, NotFound, ValidationFailed

from ..factories import make_project

S, A = ProjectStatus, ProjectAction

#: The lifecycle as the issue states it, written out independently of the code's table:
#: (state, action) -> (next state, roles that may take it).
EXPECTED: dict[tuple[ProjectStatus, ProjectAction], tuple[ProjectStatus, set[str]]] = {
    (S.DRAFT, A.EDIT): (S.DRAFT, {"owner"}),
    (S.CHANGES_REQUESTED, A.EDIT): (S.CHANGES_REQUESTED, {"owner"}),
    (S.DRAFT, A.SUBMIT): (S.SUBMITTED, {"owner"}),
    (S.CHANGES_REQUESTED, A.SUBMIT): (S.SUBMITTED, {"owner"}),
    (S.SUBMITTED, A.WITHDRAW): (S.DRAFT, {"owner"}),
    (S.SUBMITTED, A.APPROVE): (S.APPROVED, {"secretary"}),
    (S.SUBMITTED, A.REJECT): (S.REJECTED, {"secretary"}),
    (S.SUBMITTED, A.REQUEST_CHANGES): (S.CHANGES_REQUESTED, {"secretary"}),
    (S.DRAFT, A.CANCEL): (S.CANCELLED, {"owner"}),
    (S.CHANGES_REQUESTED, A.CANCEL): (S.CANCELLED, {"owner"}),
    (S.APPROVED, A.CANCEL): (S.CANCELLED, {"owner", "secretary"}),
    (S.APPROVED, A.COMPLETE): (S.COMPLETED, {"owner", "secretary"}),
}

#: Which role(s) take each action in some state.
ACTION_ROLES = {
    A.EDIT: {"owner"},
    A.SUBMIT: {"owner"},
    A.WITHDRAW: {"owner"},
    A.APPROVE: {"secretary"},
    A.REJECT: {"secretary"},
    A.REQUEST_CHANGES: {"secretary"},
    A.CANCEL: {"owner", "secretary"},
    A.COMPLETE: {"owner", "secretary"},
}

PUBLIC = {S.APPROVED, S.COMPLETED}
IN_REVIEW = {S.SUBMITTED, S.CHANGES_REQUESTED}

#: actor name in the world -> (role it plays, which states it can see)
ACTORS: dict[str, tuple[str | None, str]] = {
    "member_a": ("owner", "all"),
    "secretary_a": ("secretary", "all"),
    "officer_street": (None, "all"),
    "admin": (None, "all"),
    "member_a2": (None, "community"),  # another member of the same community
    "secretary_b": (None, "public"),  # the secretary of another community
    "member_b": (None, "public"),
    "resident_a": (None, "public"),
}


def expected_outcome(state: ProjectStatus, action: ProjectAction, actor: str):
    role, sees = ACTORS[actor]
    visible = sees == "all" or state in PUBLIC or (sees == "community" and state in IN_REVIEW)
    if not visible:
        return NotFound
    if role not in ACTION_ROLES[action]:
        return Forbidden
    cell = EXPECTED.get((state, action))
    if cell is None:
        return Conflict
    if role not in cell[1]:
        return Forbidden
    return cell[0]


def take(actor, project, action: ProjectAction):
    with atomic():
        if action == A.EDIT:
            return project_service.update_project(actor, project, {"title": "改过的标题"})
        return project_service.transition(actor, project, action, "理由说明")


def test_code_table_matches_the_issue():
    code = {
        key: (cell.next, {b.value for b in cell.by})
        for key, cell in project_service.TRANSITIONS.items()
    }
    assert code == EXPECTED


@pytest.mark.parametrize("action", list(A), ids=lambda a: a.value)
@pytest.mark.parametrize("state", list(S), ids=lambda s: s.value)
def test_every_cell_with_every_actor(world, unchanged, state, action):
    project = make_project(world.member_a, world.community_a, status=state.value)
    allowed = []
    for name in ACTORS:
        outcome = expected_outcome(state, action, name)
        if isinstance(outcome, ProjectStatus):
            allowed.append((name, outcome))
            continue
        with unchanged(), pytest.raises(outcome):
            take(world.users[name], project, action)
    for name, next_state in allowed:
        fresh = make_project(world.member_a, world.community_a, status=state.value)
        before = db.session.scalar(sa.select(sa.func.count(ProjectTransition.id)))
        take(world.users[name], fresh, action)
        db.session.expire_all()
        assert project_service.get_project(fresh.id).status == next_state
        if action == A.EDIT:
            assert project_service.get_project(fresh.id).title == "改过的标题"
            continue
        step = db.session.scalars(
            sa.select(ProjectTransition)
            .where(ProjectTransition.project_id == fresh.id)
            .order_by(ProjectTransition.id.desc())
        ).first()
        assert db.session.scalar(sa.select(sa.func.count(ProjectTransition.id))) == before + 1
        assert (step.from_status, step.to_status, step.action) == (state, next_state, action)
        assert step.actor_id == world.users[name].id
        assert step.comment == "理由说明"
        assert db.session.scalar(
            sa.select(AuditEntry.id).where(
                AuditEntry.action == f"project.{action.value}", AuditEntry.object_id == fresh.id
            )
        )
        assert db.session.scalar(
            sa.select(Notification.id).where(
                Notification.user_id == world.member_a.id,
                Notification.kind == f"project.{action.value}",
                Notification.object_id == fresh.id,
            )
        )


@pytest.mark.parametrize("decision", ["reject", "request_changes"])
@pytest.mark.parametrize("comment", [None, "", "   "])
def test_reject_and_request_changes_need_a_comment(world, unchanged, decision, comment):
    project = make_project(world.member_a, world.community_a, status="submitted")
    with unchanged(), pytest.raises(ValidationFailed) as info, atomic():
        project_service.review(world.secretary_a, project, decision, comment)
    assert "comment" in info.value.errors


def test_unknown_decision(world, unchanged):
    project = make_project(world.member_a, world.community_a, status="submitted")
    with unchanged(), pytest.raises(ValidationFailed), atomic():
        project_service.review(world.secretary_a, project, "maybe", "x")


def test_resubmission_after_changes(world):
    project = make_project(world.member_a, world.community_a, status="changes_requested")
    with atomic():
        project_service.update_project(world.member_a, project, {"description": "补充了场地信息"})
    with atomic():
        project_service.transition(world.member_a, project, A.SUBMIT)
    with atomic():
        project_service.review(world.secretary_a, project, "approve")
    history = project_service.transitions_of(project)
    assert [(t.from_status, t.to_status) for t in history] == [
        (S.DRAFT, S.SUBMITTED),
        (S.SUBMITTED, S.CHANGES_REQUESTED),
        (S.CHANGES_REQUESTED, S.SUBMITTED),
        (S.SUBMITTED, S.APPROVED),
    ]
    assert history[1].comment == "审核意见"


def test_a_secretary_never_reviews_their_own_project(world, unchanged):
    from volunteer_market.models import Role

    from ..factories import make_user

    both = make_user(
        "sec_member", (Role.SECRETARY, world.community_a), (Role.MEMBER, world.community_a)
    )
    project = make_project(both, world.community_a, status="submitted")
    with unchanged(), pytest.raises(Forbidden), atomic():
        project_service.review(both, project, "approve")
    with atomic():
        project_service.review(world.secretary_a, project, "approve")


def test_submission_notifies_the_secretary(world):
    project = make_project(world.member_a, world.community_a, status="submitted")
    kinds = db.session.scalars(
        sa.select(Notification.kind).where(Notification.user_id == world.secretary_a.id)
    ).all()
    assert "project.awaiting_review" in kinds
    assert project.status == S.SUBMITTED


def test_owner_who_left_the_community_loses_owner_rights(world, unchanged):
    from volunteer_market.models import RoleGrant
    from volunteer_market.services import users as user_service

    project = make_project(world.member_a, world.community_a, status="draft")
    grant = db.session.scalar(sa.select(RoleGrant).where(RoleGrant.user_id == world.member_a.id))
    with atomic():
        user_service.revoke_role(None, grant)
    with unchanged(), pytest.raises(Forbidden), atomic():
        project_service.transition(world.member_a, project, A.SUBMIT)


def test_stale_state_is_a_conflict(world, unchanged):
    """Two reviews of one project: the second sees the changed state and gets 409."""
    project = make_project(world.member_a, world.community_a, status="submitted")
    with atomic():
        project_service.review(world.secretary_a, project, "approve")
    with unchanged(), pytest.raises(Conflict), atomic():
        project_service.review(world.secretary_a, project, "reject", "太晚了")


def test_cancelling_an_approved_project_puts_its_orders_back_on_the_board(world):
    from volunteer_market.models import NeedStatus, ProjectMode
    from volunteer_market.services import needs as need_service

    project = make_project(
        world.member_a, world.community_a, status="approved", mode=ProjectMode.MENU
    )
    with atomic():
        need = need_service.order_menu(world.resident_a, project)
    with atomic():
        project_service.transition(world.member_a, project, A.CANCEL, "人手不足")
    db.session.expire_all()
    need = need_service.get_need(need.id)
    assert need.status == NeedStatus.OPEN and need.project_id is None
