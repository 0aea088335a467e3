"""Reading projects: get one, the SQL twin of ``project.view`` for lists, filtered
lists, the review queue, a project's lifecycle history, and the duplicate hint (projects
of the community whose titles resemble a new one).
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import (
    Area,
    AreaKind,
    Category,
    Project,
    ProjectMode,
    ProjectStatus,
    ProjectTransition,
    Role,
    TeamMembership,
    TeamStatus,
    User,
)
from .. import permissions
from ..errors import NotFound

S = ProjectStatus

#: States whose projects are shown in the duplicate hint.
SIMILAR_STATUSES = (S.SUBMITTED, S.APPROVED)
SIMILAR_THRESHOLD = 0.4


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


def _officer_community_ids(actor: User) -> sa.Select[int] | None:
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
) -> sa.Select[Project]:
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
