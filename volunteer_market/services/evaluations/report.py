"""The annual report (年度考核表): one row per member of each community of an area.

Reads only rollups, grants, users and projects, never the ledger or the deliveries:

* points earned and hours: ``ranking_members`` (the community, period ``YYYY``);
* deliveries, ratings (average score), points spent and expired: ``annual_stats``;
* projects led and joined: ``annual_projects`` (projects the member earned in that
  year) against ``projects.owner_id``;
* rank in community and street: 1 + the eligible members with more points, from the
  ranking score buckets of the community and of its street (standard competition
  ranking 1, 2, 2, 4); a member without points that year, or excluded from the
  boards (suspended, member role ended), has no rank.

The members of a community: everyone with a rollup row there that year, and everyone
holding an active member grant on it (or one of its grids) now.
Cost per community: six indexed range reads bounded by its members, never by entries.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, AreaKind, Project, Role, RoleGrant, User
from ...models.evaluations import MIN_YEAR, AnnualProject, AnnualStat
from ...models.rankings import RankingMember, RankingScoreCount
from .. import permissions
from ..errors import NotFound, ValidationFailed

_rm = cast(sa.Table, RankingMember.__table__)
_rs = cast(sa.Table, RankingScoreCount.__table__)
_as = cast(sa.Table, AnnualStat.__table__)
_ap = cast(sa.Table, AnnualProject.__table__)

#: The row's fields in order (API, CSV and XLSX columns).
FIELDS = (
    "user_id",
    "username",
    "display_name",
    "home_unit",
    "community_id",
    "hours",
    "deliveries",
    "projects_led",
    "projects_joined",
    "average_score",
    "points_earned",
    "points_spent",
    "points_expired",
    "rank_community",
    "rank_street",
)
MAX_YEAR = 9999


def check_year(year: Any) -> int:
    """Return ``year`` validated (an int from 2000 to 9999); ValidationFailed otherwise."""
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationFailed("Bad year.", errors={"year": [f"From {MIN_YEAR} to {MAX_YEAR}."]})
    return year


def get_area(area_id: int) -> Area:
    """Return the area or raise :class:`NotFound`."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound("Area not found.")
    return area


def communities_under(area: Area) -> list[Area]:
    """Return the communities of ``area``'s subtree (itself if a community), by path."""
    return list(
        db.session.scalars(
            sa.select(Area)
            .where(
                Area.kind == AreaKind.COMMUNITY, Area.path.startswith(area.path, autoescape=True)
            )
            .order_by(Area.path)
        )
    )


class Ranks:
    """Ranks from an area's score buckets in one year: 1 + members with more points."""

    def __init__(self, area_id: int, year: int) -> None:
        rows = db.session.execute(
            sa.select(_rs.c.points, _rs.c.members)
            .where(_rs.c.area_id == area_id, _rs.c.period_key == str(year))
            .order_by(_rs.c.points)
        ).all()
        self.points = [int(r.points) for r in rows]
        #: suffix[i]: members in the buckets i.. (those with points >= points[i]).
        self.suffix = [0] * (len(rows) + 1)
        for i in range(len(rows) - 1, -1, -1):
            self.suffix[i] = self.suffix[i + 1] + int(rows[i].members)

    def rank(self, points: int) -> int:
        """Return 1 + the number of members with more than ``points``."""
        return 1 + self.suffix[bisect.bisect_right(self.points, points)]


def average(score_sum: int, count: int) -> float | None:
    """Return the average score with two decimals, or None without ratings."""
    if count <= 0:
        return None
    value = (Decimal(score_sum) / Decimal(count)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return float(value)


def _member_ids(community: Area, year: int) -> set[int]:
    key = str(year)
    ids = set(
        db.session.scalars(
            sa.select(_rm.c.user_id).where(_rm.c.area_id == community.id, _rm.c.period_key == key)
        )
    )
    ids.update(
        db.session.scalars(
            sa.select(_as.c.user_id).where(_as.c.community_id == community.id, _as.c.year == year)
        )
    )
    ids.update(
        db.session.scalars(
            sa.select(RoleGrant.user_id)
            .join(Area, Area.id == RoleGrant.area_id)
            .where(
                RoleGrant.role == Role.MEMBER,
                RoleGrant.revoked_at.is_(None),
                Area.path.startswith(community.path, autoescape=True),
            )
        )
    )
    return ids


def community_rows(community: Area, year: int, street_ranks: Ranks | None) -> list[dict]:
    """Return the report rows of one community, by rank (points desc), then user id."""
    ids = _member_ids(community, year)
    if not ids:
        return []
    key = str(year)
    earned = {
        r.user_id: r
        for r in db.session.execute(
            sa.select(_rm.c.user_id, _rm.c.points, _rm.c.minutes, _rm.c.eligible).where(
                _rm.c.area_id == community.id, _rm.c.period_key == key
            )
        )
    }
    stats = {
        r.user_id: r
        for r in db.session.execute(
            sa.select(_as).where(_as.c.community_id == community.id, _as.c.year == year)
        )
    }
    led: dict[int, int] = {}
    joined: dict[int, int] = {}
    for r in db.session.execute(
        sa.select(_ap.c.user_id, Project.owner_id)
        .join(Project, Project.id == _ap.c.project_id)
        .where(_ap.c.community_id == community.id, _ap.c.year == year, _ap.c.deliveries > 0)
    ):
        counts = led if r.owner_id == r.user_id else joined
        counts[r.user_id] = counts.get(r.user_id, 0) + 1
    users = db.session.execute(
        sa.select(User.id, User.username, User.display_name, User.home_unit).where(
            User.id.in_(sorted(ids))
        )
    ).all()
    ranks = Ranks(community.id, year)
    rows = []
    for u in users:
        e, s = earned.get(u.id), stats.get(u.id)
        points = int(e.points) if e is not None else 0
        ranked = e is not None and bool(e.eligible) and points > 0
        rows.append(
            {
                "user_id": u.id,
                "username": u.username,
                "display_name": u.display_name,
                "home_unit": u.home_unit or "",
                "community_id": community.id,
                "hours": round(int(e.minutes) / 60, 1) if e is not None else 0.0,
                "deliveries": int(s.deliveries) if s is not None else 0,
                "projects_led": led.get(u.id, 0),
                "projects_joined": joined.get(u.id, 0),
                "average_score": average(int(s.score_sum), int(s.ratings_count)) if s else None,
                "points_earned": points,
                "points_spent": int(s.points_spent) if s is not None else 0,
                "points_expired": int(s.points_expired) if s is not None else 0,
                "rank_community": ranks.rank(points) if ranked else None,
                "rank_street": street_ranks.rank(points) if ranked and street_ranks else None,
            }
        )
    rows.sort(key=lambda r: (-r["points_earned"], r["user_id"]))
    return rows


def iter_rows(area: Area, year: int) -> Iterator[dict]:
    """Yield the report rows of every community under ``area``, community by community."""
    streets: dict[int, Ranks] = {}
    for community in communities_under(area):
        street_id = community.parent_id
        if street_id is not None and street_id not in streets:
            streets[street_id] = Ranks(street_id, year)
        yield from community_rows(
            community, year, streets.get(street_id) if street_id is not None else None
        )


def annual_report(actor: User, area: Area, year: int) -> Iterator[dict]:
    """Return the rows of the annual report of ``area`` for ``year`` (lazily).

    :raises Forbidden: not an officer over the area, its secretary or admin.
    :raises ValidationFailed: a bad year, or a grid (choose its community).
    """
    permissions.require(actor, "reports.annual", area)
    check_year(year)
    if area.kind == AreaKind.GRID:
        raise ValidationFailed(
            "Choose a community, street or district.", errors={"area_id": ["Not a grid."]}
        )
    return iter_rows(area, year)
