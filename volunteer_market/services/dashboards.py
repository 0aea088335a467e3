"""Community dashboard (社区看板): a community's figures over a period, for its
secretary and the officers over it (rule ``dashboard.view``).

Design overview
---------------
A period is a year (``2026``), a quarter (``2026-Q4``) or a month (``2026-11``) in the
community's time zone (default: the current year); ``all`` is refused, so every query is
bounded by the period's first and last instant. Each figure is aggregated in SQL:

* ``points_by_month`` / ``hours_by_month`` — for each month of the period, the points
  and the counted hours (``counted_minutes / 60``, one decimal) of the settlement lines
  (``settlement_postings``) of the community's settlements **settled** in that month.
  Later reversals and adjustments are not subtracted: this is what service earned.
  Months are bucketed in SQL by a ``CASE`` over the months' UTC bounds (portable across
  SQLite and PostgreSQL, time-zone exact), and the scan is
  ``ix_settlements_community_id_settled_at``.
* ``needs_by_grid`` — needs of the community **posted** in the period, per grid
  (``grid_id`` null: posted for the whole community): ``open`` = still open, dispatched
  or claimed now; ``served`` = closed by a delivery. Cancelled needs count in neither.
* ``unordered_menu_projects`` — approved menu projects (自设服务菜单) of the community
  that nobody ordered in the period (no need with that ``project_id`` posted in it).
* ``members`` — users holding an active member grant on the community or one of its
  grids now; ``active_members`` — those of them with at least one settlement line in
  the period (two bounded reads: the community's member ids, the distinct participants
  of its settlements in the period; ``bench.dashboards``); ``participation_rate`` = ``active_members / members`` (0 without
  members), four decimals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import (
    Area,
    AreaKind,
    Need,
    NeedStatus,
    Project,
    ProjectStatus,
    Role,
    RoleGrant,
    Settlement,
    SettlementPosting,
    User,
    utcnow,
)
from ..models.projects import ProjectMode
from ..zones import area_zone
from . import permissions
from .errors import Forbidden, NotFound, ValidationFailed

PERIOD_RE = re.compile(r"^([1-9]\d{3})(?:-Q([1-4])|-(0[1-9]|1[0-2]))?$")


@dataclass(frozen=True)
class Period:
    """The months of a period and its bounds (UTC instants)."""

    key: str
    months: list[str]
    bounds: list[tuple[datetime, datetime]]

    @property
    def start(self) -> datetime:
        return self.bounds[0][0]

    @property
    def end(self) -> datetime:
        return self.bounds[-1][1]


def parse_period(value: str | None, community: Area, now: datetime | None = None) -> Period:
    """Return the period ``value`` (default: this year in the community's zone).

    :raises ValidationFailed: not a year, quarter or month.
    """
    tz = area_zone(community)
    if not value:
        value = str((now or utcnow()).astimezone(tz).year)
    match = PERIOD_RE.match(value) if isinstance(value, str) else None
    if match is None or not 2000 <= int(match[1]) <= 2999:
        raise ValidationFailed(
            "Bad period.",
            errors={"period": ["A year (2026), quarter (2026-Q4) or month (2026-11)."]},
        )
    year, quarter, month = int(match[1]), match[2], match[3]
    if month:
        numbers = [int(month)]
    elif quarter:
        numbers = [3 * (int(quarter) - 1) + i for i in (1, 2, 3)]
    else:
        numbers = list(range(1, 13))
    bounds = []
    for m in numbers:
        first = datetime(year, m, 1, tzinfo=tz)
        following = datetime(year + (m == 12), m % 12 + 1, 1, tzinfo=tz)
        bounds.append((first, following))
    return Period(value, [f"{year}-{m:02d}" for m in numbers], bounds)


def _month_of(column: Any, period: Period) -> Any:
    """A SQL expression: the period's month label of ``column`` (its UTC bounds)."""
    return sa.case(
        *[
            (sa.and_(column >= lo, column < hi), label)
            for label, (lo, hi) in zip(period.months, period.bounds, strict=True)
        ],
        else_=None,
    )


def _earned(community: Area, period: Period) -> tuple[list[dict], list[dict]]:
    month = _month_of(Settlement.settled_at, period).label("month")
    rows = db.session.execute(
        sa.select(
            month,
            sa.func.coalesce(sa.func.sum(SettlementPosting.points), 0),
            sa.func.coalesce(sa.func.sum(SettlementPosting.counted_minutes), 0),
        )
        .select_from(Settlement)
        .join(SettlementPosting, SettlementPosting.settlement_id == Settlement.id)
        .where(
            Settlement.community_id == community.id,
            Settlement.settled_at >= period.start,
            Settlement.settled_at < period.end,
        )
        .group_by(month)
    ).all()
    found = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    points = [{"month": m, "points": found.get(m, (0, 0))[0]} for m in period.months]
    hours = [{"month": m, "hours": round(found.get(m, (0, 0))[1] / 60, 1)} for m in period.months]
    return points, hours


def _needs_by_grid(community: Area, period: Period) -> list[dict[str, Any]]:
    open_states = [NeedStatus.OPEN, NeedStatus.DISPATCHED, NeedStatus.CLAIMED]
    grids = list(
        db.session.execute(
            sa.select(Area.id, Area.name)
            .where(Area.parent_id == community.id, Area.kind == AreaKind.GRID)
            .order_by(Area.path)
        )
    )
    rows = db.session.execute(
        sa.select(
            Need.grid_id,
            sa.func.count().filter(Need.status.in_(open_states)),
            sa.func.count().filter(Need.status == NeedStatus.CLOSED),
        )
        .where(
            Need.community_id == community.id,
            Need.created_at >= period.start,
            Need.created_at < period.end,
        )
        .group_by(Need.grid_id)
    ).all()
    counts = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    out = [
        {
            "grid_id": gid,
            "name": name,
            "open": counts.get(gid, (0, 0))[0],
            "served": counts.get(gid, (0, 0))[1],
        }
        for gid, name in grids
    ]
    if None in counts:
        out.append(
            {"grid_id": None, "name": None, "open": counts[None][0], "served": counts[None][1]}
        )
    return out


def _unordered_menu_projects(community: Area, period: Period) -> list[dict[str, Any]]:
    ordered = (
        sa.select(Need.id)
        .where(
            Need.project_id == Project.id,
            Need.created_at >= period.start,
            Need.created_at < period.end,
        )
        .exists()
    )
    rows = db.session.execute(
        sa.select(Project.id, Project.title)
        .where(
            Project.community_id == community.id,
            Project.status == ProjectStatus.APPROVED,
            Project.mode == ProjectMode.MENU,
            ~ordered,
        )
        .order_by(Project.id)
    ).all()
    return [{"project_id": r[0], "title": r[1]} for r in rows]


def _participation(community: Area, period: Period) -> tuple[int, int]:
    """Return ``(members, active_members)`` (see the design overview): the member ids of
    the community now, and the distinct participants of its settlements in the period
    (both bounded: by the community's grants, by its activity in the period)."""
    # the community and its grids (the tree's last level), as a literal list of ids
    areas = list(
        db.session.scalars(
            sa.select(Area.id).where(
                sa.or_(Area.id == community.id, Area.parent_id == community.id)
            )
        )
    )
    members = set(
        db.session.scalars(
            sa.select(RoleGrant.user_id)
            .join(User, User.id == RoleGrant.user_id)
            .where(
                RoleGrant.role == Role.MEMBER,
                RoleGrant.revoked_at.is_(None),
                RoleGrant.area_id.in_(areas),
                User.is_active,
            )
            .distinct()
        )
    )
    participants = set(
        db.session.scalars(
            sa.select(SettlementPosting.user_id)
            .join(Settlement, SettlementPosting.settlement_id == Settlement.id)
            .where(
                Settlement.community_id == community.id,
                Settlement.settled_at >= period.start,
                Settlement.settled_at < period.end,
            )
            .distinct()
        )
    )
    return len(members), len(members & participants)


def dashboard(viewer: User, community: Area, period: str | None = None) -> dict[str, Any]:
    """Return the community's figures over ``period`` (see the design overview).

    :raises NotFound: not a community, or one the viewer has no part in.
    :raises Forbidden: the viewer is of the community (or the admin) but does not run it.
    :raises ValidationFailed: a bad period.
    """
    if community.kind != AreaKind.COMMUNITY:
        raise NotFound("Community not found.")
    if not permissions.may(viewer, "dashboard.view", community):
        if permissions.may(viewer, "points_policy.view", community):
            raise Forbidden("Only the community's secretary and officers over it see this.")
        raise NotFound("Community not found.")
    p = parse_period(period, community)
    points, hours = _earned(community, p)
    members, active = _participation(community, p)
    return {
        "community_id": community.id,
        "period": p.key,
        "months": p.months,
        "points_by_month": points,
        "hours_by_month": hours,
        "needs_by_grid": _needs_by_grid(community, p),
        "unordered_menu_projects": _unordered_menu_projects(community, p),
        "members": members,
        "active_members": active,
        "participation_rate": round(active / members, 4) if members else 0.0,
    }
