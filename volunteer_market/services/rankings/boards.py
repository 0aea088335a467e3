"""Member rankings: one page of a board, "my rank", tiers, paging, scope choices.

Reads only rollups, settings and users, never the ledger: the page walks
``ix_ranking_members_top``; ranks and totals are sums of the score buckets.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, AreaKind, Role, User
from ...models.rankings import MAX_PER_PAGE, Exposure, RankingMember, RankingScoreCount
from ...zones import DEFAULT_TIMEZONE
from .. import permissions
from ..errors import NotFound, ValidationFailed
from .exposure import exposure_for, settings_around
from .hiding import Hidden, hidden_by_communities, not_hidden
from .periods import parse_period, recent_months

TIER_NAMES = ("gold", "silver", "bronze")

_rm = cast(sa.Table, RankingMember.__table__)
_rs = cast(sa.Table, RankingScoreCount.__table__)


@functools.cache
def _reads(dialect: str) -> dict[str, Any]:
    """Build the read statements once per dialect, with scalar bound parameters only.

    Excluded members' rows carry ``eligible`` False and are not in the score buckets,
    so a read needs no exclusion list: totals and ranks are bucket sums, and the page
    walks ``ix_ranking_members_top`` skipping the rare ineligible rows. Plain Core on
    tables, so no ORM entity loading. (The exposure settings' statement is in
    ``exposure.py``.)
    """
    p = sa.bindparam
    users = User.__table__
    eligible = sa.and_(
        _rm.c.area_id == p("area_id"),
        _rm.c.period_key == p("period"),
        _rm.c.points > 0,
        _rm.c.eligible,
    )
    display_order = (_rm.c.points.desc(), _rm.c.reached_at, _rm.c.user_id)
    listed = (
        sa.select(
            _rm.c.user_id, _rm.c.points, _rm.c.minutes, _rm.c.reached_at, users.c.display_name
        )
        .select_from(_rm.join(users, users.c.id == _rm.c.user_id))
        .where(eligible, _rm.c.points >= p("floor"))
    )
    tier_order = sa.case((_rm.c.points >= p("gold"), 1), (_rm.c.points >= p("silver"), 2), else_=3)
    return {
        "bucket_sum": sa.select(sa.func.coalesce(sa.func.sum(_rs.c.members), 0)).where(
            _rs.c.area_id == p("area_id"),
            _rs.c.period_key == p("period"),
            _rs.c.points > p("above"),
        ),
        "page": listed.order_by(*display_order).offset(p("offset")).limit(p("limit")),
        "tiers_page": listed.order_by(tier_order, users.c.display_name, _rm.c.user_id)
        .offset(p("offset"))
        .limit(p("limit")),
        "points_at": sa.select(_rm.c.points)
        .where(eligible)
        .order_by(*display_order)
        .offset(p("offset"))
        .limit(1),
        # My row and, in the same statement, the bucket sum above my points.
        "mine": sa.select(
            _rm.c.points,
            _rm.c.minutes,
            _rm.c.eligible,
            sa.select(sa.func.coalesce(sa.func.sum(_rs.c.members), 0))
            .where(
                _rs.c.area_id == _rm.c.area_id,
                _rs.c.period_key == _rm.c.period_key,
                _rs.c.points > _rm.c.points,
            )
            .scalar_subquery()
            .label("above"),
        ).where(
            _rm.c.area_id == p("area_id"),
            _rm.c.period_key == p("period"),
            _rm.c.user_id == p("user_id"),
        ),
    }


def _read(name: str, params: dict[str, Any]) -> sa.CursorResult:
    """Execute read statement ``name`` on the session's connection (Core, cached)."""
    conn = db.session.connection()
    return conn.execute(_reads(conn.dialect.name)[name], params)


def _bucket_sum(area_id: int, period: str, above: int) -> int:
    """Members of (area, period) with more than ``above`` points (from the buckets)."""
    return int(
        _read("bucket_sum", {"area_id": area_id, "period": period, "above": above}).scalar_one()
    )


@dataclass
class _Board:
    """The eligible members of (area, period): counts from the score buckets (which
    count eligible rows only), rows from ``ix_ranking_members_top``."""

    area_id: int
    period: str

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        return {"area_id": self.area_id, "period": self.period}

    def above(self, points: int) -> int:
        """Eligible members with more than ``points`` points."""
        return _bucket_sum(self.area_id, self.period, max(points, 0))

    def total(self) -> int:
        return self.above(0)

    def points_at(self, position: int) -> int | None:
        """Points of the eligible row at 1-based ``position`` in display order."""
        return _read("points_at", {**self.params, "offset": position - 1}).scalar()

    def page(
        self, floor: int, offset: int, limit: int, cutoffs: dict[str, int] | None
    ) -> Sequence[Any]:
        """Rows with at least ``floor`` points, in display order or (tiers) by tier
        then display name."""
        params = {**self.params, "floor": floor, "offset": offset, "limit": limit}
        if cutoffs:
            params.update(gold=cutoffs["gold"], silver=cutoffs["silver"])
            return _read("tiers_page", params).all()
        return _read("page", params).all()

    def mine(self, user_id: int) -> Any:
        return _read("mine", {**self.params, "user_id": user_id}).first()

    def _unhidden(self, floor: int, hidden: list[Hidden]) -> list[sa.ColumnElement[bool]]:
        return [
            _rm.c.area_id == self.area_id,
            _rm.c.period_key == self.period,
            _rm.c.points > 0,
            _rm.c.eligible,
            _rm.c.points >= floor,
            not_hidden(hidden, self.period, _rm.c.user_id),
        ]

    def count_unhidden(self, floor: int, hidden: list[Hidden]) -> int:
        """Rows with at least ``floor`` points whose community does not hide them."""
        return int(
            db.session.execute(
                sa.select(sa.func.count()).select_from(_rm).where(*self._unhidden(floor, hidden))
            ).scalar_one()
        )

    def page_unhidden(
        self,
        floor: int,
        offset: int,
        limit: int,
        cutoffs: dict[str, int] | None,
        hidden: list[Hidden],
    ) -> Sequence[Any]:
        """:meth:`page` without the members their communities hide (built per call:
        the floors vary)."""
        users = User.__table__
        stmt = (
            sa.select(
                _rm.c.user_id, _rm.c.points, _rm.c.minutes, _rm.c.reached_at, users.c.display_name
            )
            .select_from(_rm.join(users, users.c.id == _rm.c.user_id))
            .where(*self._unhidden(floor, hidden))
        )
        if cutoffs:
            tier = sa.case(
                (_rm.c.points >= cutoffs["gold"], 1),
                (_rm.c.points >= cutoffs["silver"], 2),
                else_=3,
            )
            stmt = stmt.order_by(tier, users.c.display_name, _rm.c.user_id)
        else:
            stmt = stmt.order_by(_rm.c.points.desc(), _rm.c.reached_at, _rm.c.user_id)
        return db.session.execute(stmt.offset(offset).limit(limit)).all()


def hours(minutes: int) -> float:
    """Return minutes as hours with one decimal."""
    return round(minutes / 60, 1)


def sees_full_list(viewer: User | None, area: Area) -> bool:
    """Secretaries and officers over the area (and admins) always see the full list."""
    return viewer is not None and permissions.may(viewer, "rankings.full_list", area)


def _tier(points: int, cutoffs: dict[str, int]) -> str | None:
    for name in TIER_NAMES:
        if name in cutoffs and points >= cutoffs[name]:
            return name
    return None


def ranking(
    area: Area,
    period: str = "all",
    page: int = 1,
    per_page: int = 20,
    viewer: User | None = None,
) -> dict[str, Any]:
    """Return one page of the member ranking of ``area`` (its subtree) in ``period``.

    ``{area, period, items: [{rank, user_id, display_name, points, hours, tier}], me,
    page, per_page, total, exposure}``. Ranks are standard competition ranks among
    eligible members; ties are listed by who reached the total first, then user id.
    ``me`` is the viewer's ``{rank, points, hours, tier}`` (None without points there).
    Reads rollups only (never the ledger).

    :raises ValidationFailed: bad period or paging.
    """
    period = parse_period(period)
    page, per_page = paging(page, per_page)
    board = _Board(area.id, period)
    around = settings_around(area)
    setting = exposure_for(area, around)
    mode = Exposure.FULL if sees_full_list(viewer, area) else setting.mode
    total = board.total()

    cutoffs: dict[str, int] = {}
    visible_floor = 1  # rows with points >= floor are listed
    if mode == Exposure.TOP_N and setting.top_n is not None and total > setting.top_n:
        visible_floor = board.points_at(setting.top_n) or 1
    elif mode == Exposure.TIERS and total:
        for name, pct in zip(
            TIER_NAMES, (setting.gold_pct, setting.silver_pct, setting.bronze_pct), strict=True
        ):
            position = max(1, math.ceil(total * pct / 100))
            cutoffs[name] = board.points_at(position) or 1
        visible_floor = cutoffs["bronze"]
    # members their own community does not show are shown at no scope (hiding.py)
    hidden = hidden_by_communities(viewer, area, period, around) if total else []
    if hidden:
        visible = board.count_unhidden(visible_floor, hidden)
    else:
        visible = board.above(visible_floor - 1) if visible_floor > 1 else total

    offset = (page - 1) * per_page
    items: list[dict[str, Any]] = []
    if offset < visible:
        tier_cutoffs = cutoffs if mode == Exposure.TIERS else None
        if hidden:
            rows = board.page_unhidden(visible_floor, offset, per_page, tier_cutoffs, hidden)
        else:
            rows = board.page(visible_floor, offset, per_page, tier_cutoffs)
        if mode == Exposure.TIERS:
            items = [
                {
                    "rank": None,
                    "user_id": r.user_id,
                    "display_name": r.display_name,
                    "points": None,
                    "hours": None,
                    "tier": _tier(int(r.points), cutoffs),
                }
                for r in rows
            ]
        elif hidden:  # the rows are not contiguous: each rank from the buckets
            items = _ranked(rows, 0, None)
            ranks: dict[int, int] = {}
            for item in items:
                if item["points"] not in ranks:
                    ranks[item["points"]] = 1 + board.above(item["points"])
                item["rank"] = ranks[item["points"]]
        else:
            items = _ranked(rows, offset, board)

    me = None
    if viewer is not None:
        mine = board.mine(viewer.id)
        if mine is not None and mine.points > 0 and mine.eligible:
            me = {
                "rank": 1 + int(mine.above),
                "points": int(mine.points),
                "hours": hours(int(mine.minutes)),
                "tier": _tier(int(mine.points), cutoffs) if mode == Exposure.TIERS else None,
            }
    if viewer is not None:
        for item in items:
            item["is_me"] = item["user_id"] == viewer.id
    return {
        "area": area,
        "period": period,
        "items": items,
        "me": me,
        "page": page,
        "per_page": per_page,
        "total": visible,
        "exposure": {
            "mode": mode.value,
            "configured": setting.mode.value,
            "top_n": setting.top_n if setting.mode == Exposure.TOP_N else None,
            "tiers": (
                {
                    "gold": setting.gold_pct,
                    "silver": setting.silver_pct,
                    "bronze": setting.bronze_pct,
                }
                if setting.mode == Exposure.TIERS
                else None
            ),
        },
    }


def _ranked(rows: Sequence[Any], offset: int, board: _Board | None) -> list[dict[str, Any]]:
    """Attach competition ranks to rows in display order starting at ``offset``."""
    items: list[dict[str, Any]] = []
    prev_points: int | None = None
    rank = 0
    for i, r in enumerate(rows):
        points = int(r.points)
        if points != prev_points:
            if i == 0 and offset > 0:
                rank = 1 + (board.above(points) if board is not None else 0)
            else:
                rank = offset + i + 1
        prev_points = points
        items.append(
            {
                "rank": rank,
                "user_id": r.user_id,
                "display_name": r.display_name,
                "points": points,
                "hours": hours(int(r.minutes)),
                "tier": None,
            }
        )
    return items


def paging(page: int, per_page: int) -> tuple[int, int]:
    """Return the validated ``(page, per_page)``; ValidationFailed (422) otherwise."""
    errors: dict[str, list[str]] = {}
    if isinstance(page, bool) or not isinstance(page, int) or page < 1 or page > 1_000_000:
        errors["page"] = ["From 1."]
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int)
        or not 1 <= per_page <= MAX_PER_PAGE
    ):
        errors["per_page"] = [f"From 1 to {MAX_PER_PAGE}."]
    if errors:
        raise ValidationFailed("Bad paging.", errors=errors)
    return page, per_page


def get_area(area_id: int) -> Area:
    """Return the area or raise :class:`NotFound`."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound("Area not found.")
    return area


def default_area(user: User) -> Area | None:
    """Return the area a user's leaderboard opens on: their first community."""
    ids = sorted(permissions.user_communities(user))
    if ids:
        return db.session.get(Area, ids[0])
    areas = permissions.grant_areas(user, [r for r in Role if r != Role.ADMIN])
    if areas:
        return min(areas, key=lambda a: (a.depth, a.id))
    # No area of their own (an admin): the first district.
    return db.session.scalars(
        sa.select(Area).where(Area.parent_id.is_(None)).order_by(Area.id).limit(1)
    ).first()


def scope_choices(user: User) -> list[Area]:
    """Return the areas offered in the leaderboard's scope picker: the user's grant
    areas and their ancestors (grid, community, street, district), plus the
    communities under an officer's areas."""
    ids: set[int] = set()
    officer_paths: list[str] = []
    for area in permissions.grant_areas(user, [r for r in Role if r != Role.ADMIN]):
        ids.update(area.ancestor_ids())
    for area in permissions.grant_areas(user, [Role.OFFICER]):
        officer_paths.append(area.path)
    if permissions.is_admin(user):
        ids.update(db.session.scalars(sa.select(Area.id).where(Area.parent_id.is_(None))))
        officer_paths.append("/")
    stmt = sa.select(Area).where(Area.id.in_(ids))
    if officer_paths:
        stmt = sa.select(Area).where(
            sa.or_(
                Area.id.in_(ids),
                sa.and_(
                    Area.kind.in_([AreaKind.STREET, AreaKind.COMMUNITY]),
                    sa.or_(*[Area.path.startswith(p, autoescape=True) for p in officer_paths]),
                ),
            )
        )
    return list(db.session.scalars(stmt.order_by(Area.path)))


def monthly_points(
    user: User | int, months: int = 12, tz: str = DEFAULT_TIMEZONE, now: datetime | None = None
) -> list[tuple[str, int]]:
    """Return ``[("2025-12", points), ...]`` for the last ``months`` months, oldest first,
    from the member's month rollups at the top of the tree (every district summed)."""
    user_id = user if isinstance(user, int) else user.id
    labels = recent_months(months, tz, now)
    roots = sa.select(Area.id).where(Area.parent_id.is_(None))
    rows = dict(
        db.session.execute(
            sa.select(_rm.c.period_key, sa.func.sum(_rm.c.points))
            .where(
                _rm.c.user_id == user_id,
                _rm.c.period_key.in_(labels),
                _rm.c.area_id.in_(roots),
            )
            .group_by(_rm.c.period_key)
        ).all()
    )
    return [(label, int(rows.get(label) or 0)) for label in labels]
