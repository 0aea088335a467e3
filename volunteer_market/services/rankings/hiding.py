"""Exposure at every scope: a member his community does not show is shown nowhere.

A community's exposure (top-N or tiers) lists only the members at or above its visible
floor (the N-th member's points; the bronze cut-off). Without this module the street,
the district and the community's own grids would list everyone else all the same, each
board applying only its own setting. :func:`hidden_by_communities` finds, for one board
(area, period) and one viewer, the communities whose setting restricts that viewer
(``exposure_for`` of the community is not ``full`` and the viewer does not see its full
list) and each one's floor; :func:`not_hidden` is the SQL condition that drops their
members below the floor from the board's rows. The communities of a board are those in
its subtree and, for a grid, the community it lies in.

Cost: the board's exposure statement also reads the settings of the area's subtree
(``exposure.settings_around``); when none of them restricts (the default) nothing more
is read. Otherwise one query for the communities of the scope, then per restricted
community one count and one ``ix_ranking_members_top`` probe for its floor. Ranks stay the real positions among all eligible members (so a listed
member keeps his rank and a hidden one only leaves a gap; nobody is named).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, AreaKind, User
from ...models.rankings import Exposure, RankingMember
from .. import permissions

_rm = cast(sa.Table, RankingMember.__table__)


@dataclass(frozen=True)
class Hidden:
    """Members of ``community_id`` with fewer than ``floor`` points are not listed."""

    community_id: int
    floor: int


def _communities(area: Area) -> list[Area]:
    """The communities whose members can appear on ``area``'s board."""
    if area.kind == AreaKind.GRID:
        parent = db.session.get(Area, area.parent_id) if area.parent_id else None
        return [parent] if parent is not None else []
    if area.kind == AreaKind.COMMUNITY:
        return []  # its own board applies its own setting
    return list(
        db.session.scalars(
            sa.select(Area).where(
                Area.kind == AreaKind.COMMUNITY,
                Area.path.startswith(area.path, autoescape=True),
            )
        )
    )


def _settings(communities: list[Area], around: list[Any]) -> dict[int, Any]:
    """The setting that applies to each community (its own or its nearest ancestor's),
    from the rows of ``exposure.settings_around`` of the board's area."""
    out: dict[int, Any] = {}
    for c in communities:
        mine = [r for r in around if c.path.startswith(r.path)]
        if mine:
            out[c.id] = max(mine, key=lambda r: len(r.path))
    return out


def _eligible(community_id: int, period: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        _rm.c.area_id == community_id,
        _rm.c.period_key == period,
        _rm.c.points > 0,
        _rm.c.eligible,
    )


def _points_at(community_id: int, period: str, position: int) -> int | None:
    return db.session.execute(
        sa.select(_rm.c.points)
        .where(_eligible(community_id, period))
        .order_by(_rm.c.points.desc(), _rm.c.reached_at, _rm.c.user_id)
        .offset(position - 1)
        .limit(1)
    ).scalar()


def _floor(setting: Any, community_id: int, period: str) -> int | None:
    """The fewest points a member of the community needs to be listed (None: all are)."""
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(_rm).where(_eligible(community_id, period))
    ).scalar_one()
    if Exposure(setting.exposure) == Exposure.TOP_N and setting.top_n is not None:
        if total <= setting.top_n:
            return None
        return _points_at(community_id, period, setting.top_n)
    if Exposure(setting.exposure) == Exposure.TIERS and total:
        return _points_at(community_id, period, max(1, math.ceil(total * setting.bronze_pct / 100)))
    return None


def hidden_by_communities(
    viewer: User | None, area: Area, period: str, around: list[Any]
) -> list[Hidden]:
    """Return the communities whose members below a floor ``area``'s board must not list
    to ``viewer`` in ``period`` (empty: nothing to hide). ``around``: the setting rows
    of ``exposure.settings_around(area)``; no query at all when none restricts."""
    if area.kind == AreaKind.COMMUNITY or all(r.exposure == Exposure.FULL for r in around):
        return []
    communities = _communities(area)
    if not communities:
        return []
    settings = _settings(communities, around)
    out = []
    for c in communities:
        setting = settings.get(c.id)
        if setting is None or Exposure(setting.exposure) == Exposure.FULL:
            continue
        if viewer is not None and permissions.may(viewer, "rankings.full_list", c):
            continue
        floor = _floor(setting, c.id, period)
        if floor is not None:
            out.append(Hidden(c.id, floor))
    return out


def not_hidden(hidden: list[Hidden], period: str, user_id: Any) -> sa.ColumnElement[bool]:
    """The condition that ``user_id`` is below no floor of ``hidden`` in ``period``."""
    h = _rm.alias("hidden")
    below = sa.or_(*[sa.and_(h.c.area_id == x.community_id, h.c.points < x.floor) for x in hidden])
    return ~sa.exists().where(h.c.user_id == user_id, h.c.period_key == period, below)
