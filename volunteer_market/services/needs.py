"""Residents' needs (群众需求): post, order from a menu, dispatch (派单), claim (抢单), release.

Design overview
---------------
States: ``open`` (on the board) → ``claimed`` (a member took it) or ``dispatched`` (the
secretary gave it to a project or a member; an order of a ``menu`` project starts here)
→ ``closed`` by the delivery that fulfils it (``services/deliveries``). ``release``
puts a claimed/dispatched need back on the board; ``cancel`` ends it.

Every change is one conditional ``UPDATE needs ... WHERE id = :id AND status IN (...)``
whose row count decides: of two members claiming at once exactly one wins and the
other gets :class:`Conflict` -- on SQLite (``BEGIN IMMEDIATE``) and on PostgreSQL
(the row lock taken by the first UPDATE makes the second re-check the guard).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

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
    ProjectMode,
    ProjectStatus,
    Role,
    RoleGrant,
    TeamMembership,
    TeamStatus,
    User,
    utcnow,
)
from . import audit, permissions
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .permissions import NeedFor

N = NeedStatus
#: States from which a need can still be served, dispatched, released or cancelled.
LIVE_STATUSES = (N.OPEN, N.DISPATCHED, N.CLAIMED)


def get_need(need_id: int) -> Need:
    """Return the need or raise :class:`NotFound`."""
    need = db.session.execute(
        sa.select(Need)
        .where(Need.id == need_id)
        .options(joinedload(Need.beneficiary), joinedload(Need.assignee), joinedload(Need.project))
    ).scalar_one_or_none()
    if need is None:
        raise NotFound("Need not found.")
    return need


def get_visible_need(actor: User, need_id: int) -> Need:
    """Return the need if ``actor`` may see it, else raise :class:`NotFound`."""
    need = get_need(need_id)
    if not permissions.may(actor, "need.view", need):
        raise NotFound("Need not found.")
    return need


def visible_condition(actor: User) -> sa.ColumnElement[bool]:
    """Return the SQL twin of the ``need.view`` rule for lists."""
    if permissions.is_admin(actor):
        return sa.true()
    conds: list[sa.ColumnElement[bool]] = [
        Need.beneficiary_id == actor.id,
        Need.posted_by_id == actor.id,
        Need.assignee_id == actor.id,
        Need.project_id.in_(
            sa.select(Project.id).where(
                sa.or_(
                    Project.owner_id == actor.id,
                    Project.id.in_(
                        sa.select(TeamMembership.project_id).where(
                            TeamMembership.user_id == actor.id,
                            TeamMembership.status == TeamStatus.ACTIVE,
                        )
                    ),
                )
            )
        ),
    ]
    communities = permissions.communities_of(actor, [Role.MEMBER, Role.SECRETARY, Role.GRID_WORKER])
    if communities:
        conds.append(Need.community_id.in_(communities))
    officer_areas = permissions.grant_areas(actor, [Role.OFFICER])
    if officer_areas:
        conds.append(
            Need.community_id.in_(
                sa.select(Area.id).where(
                    sa.or_(*[Area.path.startswith(a.path, autoescape=True) for a in officer_areas])
                )
            )
        )
    return sa.or_(*conds)


def list_needs(
    actor: User,
    *,
    community_id: int | None = None,
    status: NeedStatus | None = None,
    category: Category | None = None,
    project_id: int | None = None,
    mine: bool = False,
) -> sa.Select[Need]:
    """Return a SELECT of the needs ``actor`` may see, newest first (people loaded)."""
    stmt = (
        sa.select(Need)
        .where(visible_condition(actor))
        .options(joinedload(Need.beneficiary), joinedload(Need.assignee), joinedload(Need.project))
        .order_by(Need.created_at.desc(), Need.id.desc())
    )
    if community_id is not None:
        stmt = stmt.where(Need.community_id == community_id)
    if status is not None:
        stmt = stmt.where(Need.status == status)
    if category is not None:
        stmt = stmt.where(Need.category == category)
    if project_id is not None:
        stmt = stmt.where(Need.project_id == project_id)
    if mine:
        stmt = stmt.where(
            sa.or_(
                Need.beneficiary_id == actor.id,
                Need.posted_by_id == actor.id,
                Need.assignee_id == actor.id,
            )
        )
    return stmt


def _community(community_id: int) -> Area:
    area = db.session.get(Area, community_id)
    if area is None or area.kind != AreaKind.COMMUNITY:
        raise ValidationFailed("Unknown community.", errors={"community_id": ["Not a community."]})
    return area


def _resident_grid(user_id: int, community: Area) -> int | None:
    """Return the grid of ``community`` where the user is a resident, if the grant is on one."""
    rows = db.session.execute(
        sa.select(Area.id, Area.kind)
        .join(RoleGrant, RoleGrant.area_id == Area.id)
        .where(
            RoleGrant.user_id == user_id,
            RoleGrant.role == Role.RESIDENT,
            RoleGrant.revoked_at.is_(None),
            Area.path.startswith(community.path, autoescape=True),
        )
        .order_by(Area.id)
    ).all()
    for area_id, kind in rows:
        if kind == AreaKind.GRID:
            return area_id
    return None


def create_need(
    actor: User,
    *,
    community_id: int,
    title: str,
    description: str = "",
    category: Category,
    on_behalf_of: int | None = None,
) -> Need:
    """Post a need: a resident for themself, a grid worker for a resident (flagged).

    :raises ValidationFailed: unknown community; ``on_behalf_of`` not a resident there.
    :raises Forbidden: not a resident (or grid worker) of that community.
    """
    community = _community(community_id)
    resident = actor
    if on_behalf_of is not None and on_behalf_of != actor.id:
        if not permissions.in_community(actor, Role.GRID_WORKER, community.id):
            raise Forbidden("Only the community's grid workers post for residents.")
        resident = db.session.get(User, on_behalf_of)  # type: ignore[assignment]
        if resident is None or not permissions.in_community(resident, Role.RESIDENT, community.id):
            raise ValidationFailed(
                "Not a resident of this community.",
                errors={"on_behalf_of": ["Not a resident of this community."]},
            )
    permissions.require(actor, "need.create", NeedFor(community, resident))
    need = Need(
        community_id=community.id,
        grid_id=_resident_grid(resident.id, community),
        title=title,
        description=description or "",
        category=Category(category),
        posted_by_id=actor.id,
        beneficiary_id=resident.id,
        on_behalf=resident.id != actor.id,
        status=N.OPEN,
    )
    db.session.add(need)
    db.session.flush()
    audit.record(
        actor,
        "need.create",
        "need",
        need.id,
        area_id=community.id,
        detail={"on_behalf": need.on_behalf},
    )
    if need.on_behalf:
        audit.notify(
            resident.id,
            "need.posted_for_you",
            object_type="need",
            object_id=need.id,
            params={"title": need.title},
        )
    return need


def order_menu(actor: User, project: Project, *, description: str = "") -> Need:
    """Order a ``menu`` project: a need bound to it (``dispatched`` to the project).

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: not a resident of the project's community.
    :raises Conflict: not a menu project, or not approved.
    """
    if not permissions.may(actor, "project.view", project):
        raise NotFound("Project not found.")
    permissions.require(actor, "project.order", project)
    if project.mode != ProjectMode.MENU:
        raise Conflict("Only menu services can be ordered.")
    if project.status != ProjectStatus.APPROVED:
        raise Conflict(f"A project that is {project.status.value} takes no orders.")
    community = db.session.get(Area, project.community_id)
    assert community is not None
    need = Need(
        community_id=project.community_id,
        grid_id=_resident_grid(actor.id, community),
        title=project.title,
        description=description or "",
        category=project.category,
        posted_by_id=actor.id,
        beneficiary_id=actor.id,
        on_behalf=False,
        status=N.DISPATCHED,
        project_id=project.id,
    )
    db.session.add(need)
    db.session.flush()
    audit.record(
        actor,
        "need.order",
        "need",
        need.id,
        area_id=project.community_id,
        detail={"project_id": project.id},
    )
    audit.notify(
        project.owner_id,
        "need.ordered",
        object_type="need",
        object_id=need.id,
        params={"title": project.title, "resident": actor.display_name},
    )
    return need


def _move(need: Need, expected: Iterable[NeedStatus], values: dict[str, Any], refusal: str) -> None:
    """Apply ``values`` by one conditional UPDATE; raise :class:`Conflict` if it lost."""
    result = db.session.execute(
        sa.update(Need)
        .where(Need.id == need.id, Need.status.in_(list(expected)))
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.expire(need)
    if cast(sa.CursorResult[Any], result).rowcount != 1:
        raise Conflict(refusal)


def _view(actor: User, need: Need) -> None:
    if not permissions.may(actor, "need.view", need):
        raise NotFound("Need not found.")


def claim(actor: User, need: Need) -> Need:
    """Take an open need (抢单); of concurrent claimers exactly one wins.

    :raises Forbidden: not a member of the need's community.
    :raises Conflict: the need is no longer open (taken, dispatched, closed).
    """
    _view(actor, need)
    permissions.require(actor, "need.claim", need)
    if need.beneficiary_id == actor.id:
        raise Conflict("You cannot claim your own need.")
    _move(
        need,
        [N.OPEN],
        {"status": N.CLAIMED, "assignee_id": actor.id, "project_id": None},
        "This need has already been taken.",
    )
    audit.record(actor, "need.claim", "need", need.id, area_id=need.community_id)
    audit.notify(
        need.beneficiary_id,
        "need.claimed",
        object_type="need",
        object_id=need.id,
        params={"title": need.title, "member": actor.display_name},
    )
    db.session.flush()
    return need


def dispatch(
    actor: User, need: Need, *, project_id: int | None = None, member_id: int | None = None
) -> Need:
    """Give a need to an approved project or a member of its community (派单); reassigns too.

    :raises Forbidden: not the community's secretary.
    :raises ValidationFailed: neither or both targets; target not of this community.
    :raises Conflict: the need is closed or cancelled.
    """
    _view(actor, need)
    permissions.require(actor, "need.dispatch", need)
    if (project_id is None) == (member_id is None):
        raise ValidationFailed(
            "Give either a project or a member.",
            errors={"_schema": ["Exactly one of project_id and member_id."]},
        )
    notify_id: int
    if project_id is not None:
        project = db.session.get(Project, project_id)
        if (
            project is None
            or project.community_id != need.community_id
            or project.status != ProjectStatus.APPROVED
        ):
            raise ValidationFailed(
                "Not an approved project of this community.",
                errors={"project_id": ["Not an approved project of this community."]},
            )
        values = {"status": N.DISPATCHED, "project_id": project.id, "assignee_id": None}
        notify_id = project.owner_id
    else:
        member = db.session.get(User, member_id)
        if (
            member is None
            or not member.is_active
            or not permissions.in_community(member, Role.MEMBER, need.community_id)
        ):
            raise ValidationFailed(
                "Not a member of this community.",
                errors={"member_id": ["Not a member of this community."]},
            )
        if member.id == need.beneficiary_id:
            raise ValidationFailed(
                "The resident cannot serve their own need.",
                errors={"member_id": ["The resident cannot serve their own need."]},
            )
        values = {"status": N.DISPATCHED, "project_id": None, "assignee_id": member.id}
        notify_id = member.id
    previous = need.status
    _move(need, LIVE_STATUSES, values, f"A need that is {previous.value} cannot be dispatched.")
    audit.record(
        actor,
        "need.dispatch",
        "need",
        need.id,
        area_id=need.community_id,
        detail={"project_id": project_id, "member_id": member_id, "from": previous.value},
    )
    audit.notify(
        notify_id,
        "need.dispatched",
        object_type="need",
        object_id=need.id,
        params={"title": need.title},
    )
    db.session.flush()
    return need


def release(actor: User, need: Need) -> Need:
    """Put a claimed or dispatched need back on the board (assignee, project owner, secretary).

    :raises Forbidden: none of those.
    :raises Conflict: the need is not claimed or dispatched.
    """
    _view(actor, need)
    permissions.require(actor, "need.release", need)
    previous = need.status
    _move(
        need,
        [N.CLAIMED, N.DISPATCHED],
        {"status": N.OPEN, "assignee_id": None, "project_id": None},
        f"A need that is {previous.value} cannot be released.",
    )
    audit.record(
        actor,
        "need.release",
        "need",
        need.id,
        area_id=need.community_id,
        detail={"from": previous.value},
    )
    audit.notify(
        need.beneficiary_id,
        "need.released",
        object_type="need",
        object_id=need.id,
        params={"title": need.title},
    )
    db.session.flush()
    return need


def cancel(actor: User, need: Need) -> Need:
    """Withdraw a need that has not been served (resident, poster or secretary).

    :raises Conflict: already closed or cancelled.
    """
    _view(actor, need)
    permissions.require(actor, "need.cancel", need)
    previous = need.status
    assignee = need.assignee_id
    _move(
        need,
        LIVE_STATUSES,
        {"status": N.CANCELLED},
        f"A need that is {previous.value} cannot be cancelled.",
    )
    audit.record(
        actor,
        "need.cancel",
        "need",
        need.id,
        area_id=need.community_id,
        detail={"from": previous.value},
    )
    for user_id in {need.beneficiary_id, assignee} - {actor.id, None}:
        audit.notify(
            user_id,  # type: ignore[arg-type]
            "need.cancelled",
            object_type="need",
            object_id=need.id,
            params={"title": need.title},
        )
    db.session.flush()
    return need


def close_for_delivery(actor: User, need: Need, delivery_id: int) -> None:
    """Close ``need`` as fulfilled by delivery ``delivery_id`` (called by the deliveries service).

    :raises Conflict: the need was closed or cancelled meanwhile.
    """
    previous = need.status
    _move(
        need,
        LIVE_STATUSES,
        {"status": N.CLOSED, "closed_at": utcnow()},
        f"A need that is {previous.value} cannot be closed.",
    )
    audit.record(
        actor,
        "need.close",
        "need",
        need.id,
        area_id=need.community_id,
        detail={"delivery_id": delivery_id},
    )
    audit.notify(
        need.beneficiary_id,
        "need.closed",
        object_type="need",
        object_id=need.id,
        params={"title": need.title},
    )
