"""Rules of projects, teams, needs and deliveries.

"Of the community" means a grant on the community or one of its grids (``communities_of``);
officers read their subtree; the admin reads everything but takes no part in community
business.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    Area,
    AreaKind,
    Delivery,
    Need,
    Project,
    ProjectStatus,
    Role,
    TeamMembership,
    TeamStatus,
    User,
)
from ..delivery_people import people_of
from .core import (
    communities_of,
    holds,
    is_admin,
    may,
    rule,
)

#: Project states every signed-in user may see.
PROJECT_PUBLIC_STATUSES = frozenset({ProjectStatus.APPROVED, ProjectStatus.COMPLETED})
#: Project states members of the project's community may also see (in review).
PROJECT_COMMUNITY_STATUSES = frozenset({ProjectStatus.SUBMITTED, ProjectStatus.CHANGES_REQUESTED})


def in_community(actor: User, roles: Role | Iterable[Role], community_id: int) -> bool:
    """Return True if ``actor`` holds one of ``roles`` in community ``community_id``."""
    role_list = [roles] if isinstance(roles, Role) else list(roles)
    return community_id in communities_of(actor, role_list)


def reads_community(actor: User, community_id: int) -> bool:
    """Admin, the community's secretary and grid workers, officers above it."""
    if is_admin(actor) or in_community(actor, [Role.SECRETARY, Role.GRID_WORKER], community_id):
        return True
    area = db.session.get(Area, community_id)
    return area is not None and holds(actor, Role.OFFICER, area)


def team_status(project_id: int, user_id: int) -> TeamStatus | None:
    """Return ``user_id``'s membership status on the project's team, if any."""
    return db.session.execute(
        sa.select(TeamMembership.status).where(
            TeamMembership.project_id == project_id, TeamMembership.user_id == user_id
        )
    ).scalar_one_or_none()


def on_team(actor: User, project: Project) -> bool:
    """Return True for the owner (still a member there) and active team members."""
    if actor.id == project.owner_id:
        return in_community(actor, Role.MEMBER, project.community_id)
    return team_status(project.id, actor.id) == TeamStatus.ACTIVE


@rule("project.create")
def _project_create(actor: User, community: Area) -> bool:
    return community.kind == AreaKind.COMMUNITY and in_community(actor, Role.MEMBER, community.id)


@rule("project.similar")
def _project_similar(actor: User, community: Area) -> bool:
    return in_community(actor, [Role.MEMBER, Role.SECRETARY], community.id) or reads_community(
        actor, community.id
    )


@rule("project.view")
def _project_view(actor: User, project: Project) -> bool:
    if project.status in PROJECT_PUBLIC_STATUSES or actor.id == project.owner_id:
        return True
    if reads_community(actor, project.community_id):
        return True
    if project.status in PROJECT_COMMUNITY_STATUSES and in_community(
        actor, Role.MEMBER, project.community_id
    ):
        return True
    return team_status(project.id, actor.id) is not None


@rule("project.own")
def _project_own(actor: User, project: Project) -> bool:
    """The owner, while still a member of the project's community."""
    return actor.id == project.owner_id and in_community(actor, Role.MEMBER, project.community_id)


@rule("project.review")
def _project_review(actor: User, project: Project) -> bool:
    """The community's secretary, never for a project they lead themself."""
    return actor.id != project.owner_id and in_community(
        actor, Role.SECRETARY, project.community_id
    )


@rule("project.history")
def _project_history(actor: User, project: Project) -> bool:
    """The audited lifecycle history (who reviewed, with their comments): the owner and
    the community's staff, as the project page shows it; not every viewer of a public
    project."""
    return (
        may(actor, "project.own", project)
        or may(actor, "project.review", project)
        or reads_community(actor, project.community_id)
    )


@rule("team.join")
def _team_join(actor: User, project: Project) -> bool:
    return actor.id != project.owner_id and in_community(actor, Role.MEMBER, project.community_id)


@rule("team.manage")
def _team_manage(actor: User, project: Project) -> bool:
    return _project_own(actor, project)


@rule("project.order")
def _project_order(actor: User, project: Project) -> bool:
    return in_community(actor, Role.RESIDENT, project.community_id)


@dataclass(frozen=True)
class NeedFor:
    """A need to be posted in ``community`` for ``resident``."""

    community: Area
    resident: User


@rule("need.create")
def _need_create(actor: User, target: NeedFor) -> bool:
    """A resident for themself; a grid worker of the community for one of its residents."""
    cid = target.community.id
    if target.community.kind != AreaKind.COMMUNITY or not in_community(
        target.resident, Role.RESIDENT, cid
    ):
        return False
    if actor.id == target.resident.id:
        return True
    return in_community(actor, Role.GRID_WORKER, cid)


@rule("need.view")
def _need_view(actor: User, need: Need) -> bool:
    if actor.id in (need.beneficiary_id, need.posted_by_id, need.assignee_id):
        return True
    if in_community(actor, Role.MEMBER, need.community_id) or reads_community(
        actor, need.community_id
    ):
        return True
    if need.project_id is not None:
        project = db.session.get(Project, need.project_id)
        return project is not None and on_team(actor, project)
    return False


@rule("need.claim")
def _need_claim(actor: User, need: Need) -> bool:
    return in_community(actor, Role.MEMBER, need.community_id)


@rule("need.dispatch")
def _need_dispatch(actor: User, need: Need) -> bool:
    return in_community(actor, Role.SECRETARY, need.community_id)


@rule("need.release")
def _need_release(actor: User, need: Need) -> bool:
    """The assignee, the owner of the project it was given to, or the secretary."""
    if need.assignee_id is not None and actor.id == need.assignee_id:
        return True
    if need.project_id is not None:
        project = db.session.get(Project, need.project_id)
        if project is not None and _project_own(actor, project):
            return True
    return in_community(actor, Role.SECRETARY, need.community_id)


@rule("need.cancel")
def _need_cancel(actor: User, need: Need) -> bool:
    if actor.id in (need.beneficiary_id, need.posted_by_id):
        return True
    return in_community(actor, Role.SECRETARY, need.community_id)


@rule("delivery.record")
def _delivery_record(actor: User, project: Project) -> bool:
    return on_team(actor, project)


@rule("delivery.view")
def _delivery_view(actor: User, delivery: Delivery) -> bool:
    if actor.id == delivery.recorded_by_id or reads_community(actor, delivery.community_id):
        return True
    project = db.session.get(Project, delivery.project_id)
    if project is not None and (actor.id == project.owner_id or on_team(actor, project)):
        return True
    people = people_of(delivery.id)
    return actor.id in people.participant_ids or actor.id in people.beneficiary_ids


@rule("project.propose")
def _project_propose(actor: User, _target: Any) -> bool:
    """Has a community to propose in (shows "my projects" / "propose")."""
    return bool(communities_of(actor, [Role.MEMBER]))


@rule("project.review_queue")
def _project_review_queue(actor: User, _target: Any) -> bool:
    return bool(communities_of(actor, [Role.SECRETARY]))
