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
from ..rankings import community_table

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

    def __init__(self, buckets: list[tuple[int, int]]) -> None:
        #: ``buckets``: (points, members) ascending by points.
        self.points = [p for p, _n in buckets]
        #: suffix[i]: members in the buckets i.. (those with points >= points[i]).
        self.suffix = [0] * (len(buckets) + 1)
        for i in range(len(buckets) - 1, -1, -1):
            self.suffix[i] = self.suffix[i + 1] + buckets[i][1]

    @classmethod
    def of(cls, area_id: int, year: int) -> Ranks:
        """Load the buckets of ``area_id`` in ``year``."""
        return _ranks_of([area_id], year)[area_id]

    def rank(self, points: int) -> int:
        """Return 1 + the number of members with more than ``points``."""
        return 1 + self.suffix[bisect.bisect_right(self.points, points)]


def average(score_sum: int, count: int) -> float | None:
    """Return the average score with two decimals, or None without ratings."""
    if count <= 0:
        return None
    value = (Decimal(score_sum) / Decimal(count)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return float(value)


def subtree_ids(area: Area) -> list[int]:
    """Return the ids of ``area`` and its descendants (a community: itself and its grids)."""
    return list(
        db.session.scalars(
            sa.select(Area.id).where(Area.path.startswith(area.path, autoescape=True))
        )
    )


_USER_COLS = (User.id.label("uid"), User.username, User.display_name, User.home_unit)


def _ranks_of(area_ids: list[int], year: int) -> dict[int, Ranks]:
    """Ranks of each area in ``area_ids`` from their score buckets (one query)."""
    found: dict[int, list[tuple[int, int]]] = {a: [] for a in area_ids}
    for r in db.session.execute(
        sa.select(_rs.c.area_id, _rs.c.points, _rs.c.members)
        .where(_rs.c.area_id.in_(area_ids), _rs.c.period_key == str(year))
        .order_by(_rs.c.area_id, _rs.c.points)
    ):
        found[int(r.area_id)].append((int(r.points), int(r.members)))
    return {a: Ranks(rows) for a, rows in found.items()}


def _areas_of(community_ids: list[int]) -> list[tuple[int, int]]:
    """Return ``(area_id, community_id)`` for the communities and their grids."""
    return [
        (int(a), int(c))
        for a, c in db.session.execute(
            sa.select(
                Area.id, sa.case((Area.kind == AreaKind.GRID, Area.parent_id), else_=Area.id)
            ).where(
                sa.or_(
                    Area.id.in_(community_ids),
                    sa.and_(Area.kind == AreaKind.GRID, Area.parent_id.in_(community_ids)),
                )
            )
        )
    ]


def rows_for(communities: list[Area], year: int) -> list[dict]:
    """Return the report rows of ``communities`` (by community, then rank and user id).

    Five set-based reads for all of them (rollups joined to users, grants, projects,
    score buckets): the cost follows the members of the communities, never the ledger.
    """
    if not communities:
        return []
    ids = [c.id for c in communities]
    key = str(year)
    users: dict[tuple[int, int], Any] = {}
    earned: dict[tuple[int, int], Any] = {}
    for r in db.session.execute(
        sa.select(_rm.c.area_id, _rm.c.points, _rm.c.minutes, _rm.c.eligible, *_USER_COLS)
        .join(User, User.id == _rm.c.user_id)
        .where(_rm.c.area_id.in_(ids), _rm.c.period_key == key)
    ):
        k = (int(r.area_id), int(r.uid))
        earned[k] = users[k] = r
    stats: dict[tuple[int, int], Any] = {}
    for r in db.session.execute(
        sa.select(_as, *_USER_COLS)
        .join(User, User.id == _as.c.user_id)
        .where(_as.c.community_id.in_(ids), _as.c.year == year)
    ):
        k = (int(r.community_id), int(r.uid))
        stats[k] = r
        users.setdefault(k, r)
    # The communities and their grids, so that the grants are read by their
    # (area_id, role) index, not matched path by path against every grant.
    community_of = {int(a): int(c) for a, c in _areas_of(ids)}
    for r in db.session.execute(
        sa.select(RoleGrant.area_id, *_USER_COLS)
        .select_from(RoleGrant)
        .join(User, User.id == RoleGrant.user_id)
        .where(
            RoleGrant.area_id.in_(sorted(community_of)),
            RoleGrant.role == Role.MEMBER,
            RoleGrant.revoked_at.is_(None),
        )
    ):
        users.setdefault((community_of[int(r.area_id)], int(r.uid)), r)
    led: dict[tuple[int, int], int] = {}
    joined: dict[tuple[int, int], int] = {}
    for r in db.session.execute(
        sa.select(_ap.c.community_id, _ap.c.user_id, Project.owner_id)
        .join(Project, Project.id == _ap.c.project_id)
        .where(_ap.c.community_id.in_(ids), _ap.c.year == year, _ap.c.deliveries > 0)
    ):
        k = (int(r.community_id), int(r.user_id))
        counts = led if r.owner_id == r.user_id else joined
        counts[k] = counts.get(k, 0) + 1
    street_of = {c.id: c.parent_id for c in communities}
    ranks = _ranks_of(sorted({*ids, *(s for s in street_of.values() if s is not None)}), year)
    order = {c.id: i for i, c in enumerate(communities)}
    rows = []
    for (cid, uid), u in users.items():
        e, st = earned.get((cid, uid)), stats.get((cid, uid))
        points = int(e.points) if e is not None else 0
        ranked = e is not None and bool(e.eligible) and points > 0
        street = street_of.get(cid)
        rows.append(
            {
                "user_id": uid,
                "username": u.username,
                "display_name": u.display_name,
                "home_unit": u.home_unit or "",
                "community_id": cid,
                "hours": round(int(e.minutes) / 60, 1) if e is not None else 0.0,
                "deliveries": int(st.deliveries) if st is not None else 0,
                "projects_led": led.get((cid, uid), 0),
                "projects_joined": joined.get((cid, uid), 0),
                "average_score": average(int(st.score_sum), int(st.ratings_count))
                if st is not None
                else None,
                "points_earned": points,
                "points_spent": int(st.points_spent) if st is not None else 0,
                "points_expired": int(st.points_expired) if st is not None else 0,
                "rank_community": ranks[cid].rank(points) if ranked else None,
                "rank_street": ranks[street].rank(points) if ranked and street else None,
            }
        )
    rows.sort(key=lambda r: (order[r["community_id"]], -r["points_earned"], r["user_id"]))
    return rows


def community_rows(community: Area, year: int) -> list[dict]:
    """Return the report rows of one community, by rank (points desc), then user id."""
    return rows_for([community], year)


#: Communities read together by :func:`iter_rows` (bounded IN lists).
BATCH = 20


def iter_rows(area: Area, year: int) -> Iterator[dict]:
    """Yield the report rows of every community under ``area``, a batch at a time."""
    communities = communities_under(area)
    for i in range(0, len(communities), BATCH):
        yield from rows_for(communities[i : i + BATCH], year)


def members_per_community(area: Area, year: int) -> dict[int, int]:
    """Return, for each community under ``area``, how many rows its report has.

    The rows of a community are the union of its rollup rows of the year, its annual
    stats rows and its active member grants (on it or one of its grids), as in
    :func:`rows_for`; the union is counted in SQL, one statement for the whole area,
    without building a row. A community without a row is absent.
    """
    under = Area.path.startswith(area.path, autoescape=True)
    communities = sa.select(Area.id).where(Area.kind == AreaKind.COMMUNITY, under)
    community_of = sa.case((Area.kind == AreaKind.GRID, Area.parent_id), else_=Area.id)
    rolled = sa.select(_rm.c.area_id.label("cid"), _rm.c.user_id.label("uid")).where(
        _rm.c.area_id.in_(communities), _rm.c.period_key == str(year)
    )
    stats = sa.select(_as.c.community_id, _as.c.user_id).where(
        _as.c.community_id.in_(communities), _as.c.year == year
    )
    granted = (
        sa.select(community_of, RoleGrant.user_id)
        .join(Area, Area.id == RoleGrant.area_id)
        .where(
            RoleGrant.role == Role.MEMBER,
            RoleGrant.revoked_at.is_(None),
            Area.kind.in_([AreaKind.COMMUNITY, AreaKind.GRID]),
            under,
        )
    )
    rows = sa.union(rolled, stats, granted).subquery()
    return {
        int(cid): int(n)
        for cid, n in db.session.execute(
            sa.select(rows.c.cid, sa.func.count()).group_by(rows.c.cid)
        )
    }


def page_rows(area: Area, year: int, page: int, per_page: int) -> tuple[list[dict], int]:
    """Return one page of the report of ``area`` (rows ``(page - 1) * per_page`` on, in
    the order of :func:`iter_rows`) and the number of rows of the whole report.

    Only the communities the page overlaps are built (one or two for a page of 20 to
    100 rows): a district's JSON page costs the count of its rows in SQL and one or two
    communities' rows, not the 100,000 rows of the district in Python.
    """
    counts = members_per_community(area, year)
    start, stop = (page - 1) * per_page, page * per_page
    wanted: list[Area] = []
    offset = seen = 0
    for community in communities_under(area):
        n = counts.get(community.id, 0)
        if n and seen < stop and seen + n > start:
            if not wanted:
                offset = seen
            wanted.append(community)
        seen += n
    rows = rows_for(wanted, year) if wanted else []
    return rows[start - offset : stop - offset], seen


def _check_scope(actor: User, area: Area, year: int) -> None:
    permissions.require(actor, "reports.annual", area)
    check_year(year)
    if area.kind == AreaKind.GRID:
        raise ValidationFailed(
            "Choose a community, street or district.", errors={"area_id": ["Not a grid."]}
        )


def annual_report(actor: User, area: Area, year: int) -> Iterator[dict]:
    """Return the rows of the annual report of ``area`` for ``year`` (lazily).

    :raises Forbidden: not an officer over the area, its secretary or admin.
    :raises ValidationFailed: a bad year, or a grid (choose its community).
    """
    _check_scope(actor, area, year)
    return iter_rows(area, year)


def annual_report_page(
    actor: User, area: Area, year: int, page: int, per_page: int
) -> tuple[list[dict], int]:
    """Return one page of the annual report of ``area`` for ``year`` and its total.

    :raises Forbidden: not an officer over the area, its secretary or admin.
    :raises ValidationFailed: a bad year, or a grid (choose its community).
    """
    _check_scope(actor, area, year)
    return page_rows(area, year, page, per_page)


#: Columns of the comparison of communities (API, CSV and XLSX).
COMPARISON_FIELDS = (
    "community_id",
    "name",
    "members",
    "active_members",
    "participation_rate",
    "points",
    "hours",
    "points_per_active_member",
    "hours_per_active_member",
)


def comparison(actor: User, area: Area, year: int) -> list[dict[str, Any]]:
    """Return every community of ``area``'s subtree for ``year``: members, active
    members, points, hours, per active member and the participation rate (the
    rankings' community table, all pages, by points).

    :raises Forbidden: not an officer over the area, its secretary or admin.
    :raises ValidationFailed: a bad year, or a grid.
    """
    check_year(year)
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        table = community_table(actor, area, str(year), page, 100)
        rows += table["items"]
        if page * 100 >= table["total"]:
            return rows
        page += 1
