"""Team and community tables (officers; secretaries for their community).

:func:`team_ranking` ranks projects by points in an area and period;
:func:`community_table` gives per-community members, active members, points,
hours and participation. Both read rollups and grants, never the ledger.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, AreaKind, Project, Role, RoleGrant, User
from ...models.rankings import RankingMember, RankingTeam
from .. import permissions
from ..errors import ValidationFailed
from .boards import hours, paging
from .periods import parse_period

_rm = cast(sa.Table, RankingMember.__table__)
_rt = cast(sa.Table, RankingTeam.__table__)


def team_ranking(
    actor: User, area: Area, period: str = "all", page: int = 1, per_page: int = 20
) -> dict[str, Any]:
    """Return one page of the team (project) ranking of ``area`` in ``period``.

    ``{items: [{rank, project_id, title, community_id, points, hours}], page, per_page,
    total}``; ties by who reached the total first, then project id.

    :raises Forbidden: not an officer over the area, its community's secretary or admin.
    :raises ValidationFailed: bad period or paging.
    """
    permissions.require(actor, "rankings.teams", area)
    period = parse_period(period)
    page, per_page = paging(page, per_page)
    where = sa.and_(_rt.c.area_id == area.id, _rt.c.period_key == period, _rt.c.points > 0)
    total = int(db.session.scalar(sa.select(sa.func.count()).select_from(_rt).where(where)) or 0)
    offset = (page - 1) * per_page
    rows = db.session.execute(
        sa.select(
            _rt.c.project_id,
            _rt.c.points,
            _rt.c.minutes,
            Project.title,
            Project.community_id,
        )
        .join(Project, Project.id == _rt.c.project_id)
        .where(where)
        .order_by(_rt.c.points.desc(), _rt.c.reached_at, _rt.c.project_id)
        .offset(offset)
        .limit(per_page)
    ).all()
    items: list[dict[str, Any]] = []
    prev: int | None = None
    rank = 0
    for i, r in enumerate(rows):
        points = int(r.points)
        if points != prev:
            if i == 0 and offset > 0:
                rank = 1 + int(
                    db.session.scalar(
                        sa.select(sa.func.count())
                        .select_from(_rt)
                        .where(where, _rt.c.points > points)
                    )
                    or 0
                )
            else:
                rank = offset + i + 1
        prev = points
        items.append(
            {
                "rank": rank,
                "project_id": r.project_id,
                "title": r.title,
                "community_id": r.community_id,
                "points": points,
                "hours": hours(int(r.minutes)),
            }
        )
    return {
        "area": area,
        "period": period,
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
    }


def community_table(
    actor: User, area: Area, period: str = "all", page: int = 1, per_page: int = 20
) -> dict[str, Any]:
    """Return per-community figures of ``area``'s subtree in ``period``: members (active
    member grants now), active members (eligible, with points in the period), their
    points and hours, per active member, and the share of members active.

    Cost: one grouped pass over the communities' eligible rollup rows and member
    grants (bounded by members, never by the ledger).

    :raises Forbidden: not an officer over the area, its secretary or admin.
    :raises ValidationFailed: bad period or paging; a grid (choose its community).
    """
    permissions.require(actor, "rankings.communities", area)
    period = parse_period(period)
    page, per_page = paging(page, per_page)
    if area.kind == AreaKind.GRID:
        raise ValidationFailed(
            "Choose a community, street or district.", errors={"area_id": ["Not a grid."]}
        )
    communities = list(
        db.session.scalars(
            sa.select(Area)
            .where(
                Area.kind == AreaKind.COMMUNITY, Area.path.startswith(area.path, autoescape=True)
            )
            .order_by(Area.path)
        )
    )
    ids = [c.id for c in communities]
    community_of = sa.case((Area.kind == AreaKind.GRID, Area.parent_id), else_=Area.id)
    members: dict[int, int] = (
        dict(
            db.session.execute(
                sa.select(community_of, sa.func.count(sa.distinct(RoleGrant.user_id)))
                .select_from(RoleGrant)
                .join(Area, Area.id == RoleGrant.area_id)
                .join(User, User.id == RoleGrant.user_id)
                .where(
                    RoleGrant.role == Role.MEMBER,
                    RoleGrant.revoked_at.is_(None),
                    User.is_active == sa.true(),
                    Area.path.startswith(area.path, autoescape=True),
                )
                .group_by(community_of)
            ).all()
        )
        if ids
        else {}
    )
    sums = (
        {
            r.area_id: r
            for r in db.session.execute(
                sa.select(
                    _rm.c.area_id,
                    sa.func.count().label("n"),
                    sa.func.sum(_rm.c.points).label("points"),
                    sa.func.sum(_rm.c.minutes).label("minutes"),
                )
                .where(
                    _rm.c.area_id.in_(ids),
                    _rm.c.period_key == period,
                    _rm.c.points > 0,
                    _rm.c.eligible,
                )
                .group_by(_rm.c.area_id)
            )
        }
        if ids
        else {}
    )
    rows: list[dict[str, Any]] = []
    for c in communities:
        s = sums.get(c.id)
        active, points, minutes = (int(s.n), int(s.points), int(s.minutes)) if s else (0, 0, 0)
        n_members = int(members.get(c.id, 0))
        rows.append(
            {
                "community_id": c.id,
                "name": c.name,
                "members": n_members,
                "active_members": active,
                "participation_rate": round(active / n_members, 4) if n_members else 0.0,
                "points": points,
                "hours": hours(minutes),
                "points_per_active_member": round(points / active, 1) if active else 0.0,
                "hours_per_active_member": round(minutes / 60 / active, 1) if active else 0.0,
            }
        )
    rows.sort(key=lambda r: (-r["points"], r["community_id"]))
    offset = (page - 1) * per_page
    return {
        "area": area,
        "period": period,
        "items": rows[offset : offset + per_page],
        "page": page,
        "per_page": per_page,
        "total": len(rows),
    }
