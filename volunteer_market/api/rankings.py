"""/api/v1/rankings (members), /rankings/teams, /rankings/communities, /rankings/settings.

Reads come from the ranking rollups only (never the ledger); see services/rankings.py.
"""

from __future__ import annotations

from typing import Any

from ..database import atomic
from ..models import RankingSettings
from ..schemas.rankings import (
    CommunityTableOut,
    ExposureIn,
    ExposureSettingOut,
    RankingOut,
    RankingQuery,
    TableQuery,
    TeamRankingOut,
)
from ..services import permissions
from ..services import rankings as ranking_service
from ..services.errors import ValidationFailed
from .common import actor, make_blueprint, problem_response

blp = make_blueprint("api_rankings", "/rankings", "Rankings of members, teams and communities")


@blp.route("", methods=["GET"])
@blp.arguments(RankingQuery, location="query")
@blp.response(200, RankingOut)
@blp.alt_response(404, response=problem_response(404))  # no such area_id
def member_ranking(args: dict) -> dict[str, Any]:
    """Rank members of an area (its subtree) by points earned in a period
    (all, 2026, 2026-Q4, 2026-11), with the caller's own rank in ``me``.

    ``area_id`` defaults to the caller's first community. Exposure (full list, top-N,
    tiers) follows the area's setting; secretaries and officers over it see the full list.
    """
    user = actor()
    permissions.require(user, "rankings.view")
    if args["area_id"] is None:
        area = ranking_service.default_area(user)
        if area is None:
            raise ValidationFailed("Choose an area.", errors={"area_id": ["Required."]})
    else:
        area = ranking_service.get_area(args["area_id"])
    return ranking_service.ranking(
        area, args["period"], args["page"], args["per_page"], viewer=user
    )


@blp.route("/teams", methods=["GET"])
@blp.arguments(TableQuery, location="query")
@blp.response(200, TeamRankingOut)
@blp.alt_response(404, response=problem_response(404))  # no such area_id
def team_ranking(args: dict) -> dict[str, Any]:
    """Rank project teams of an area by points earned in a period (officers over the
    area; a secretary for their community)."""
    area = ranking_service.get_area(args["area_id"])
    return ranking_service.team_ranking(
        actor(), area, args["period"], args["page"], args["per_page"]
    )


@blp.route("/communities", methods=["GET"])
@blp.arguments(TableQuery, location="query")
@blp.response(200, CommunityTableOut)
@blp.alt_response(404, response=problem_response(404))  # no such area_id
def community_table(args: dict) -> dict[str, Any]:
    """Per-community points and hours per active member and the share of members
    active in a period (officers over the area; a secretary for their community)."""
    area = ranking_service.get_area(args["area_id"])
    return ranking_service.community_table(
        actor(), area, args["period"], args["page"], args["per_page"]
    )


@blp.route("/settings/<int:area_id>", methods=["PUT"])
@blp.arguments(ExposureIn)
@blp.response(200, ExposureSettingOut)
def set_exposure(data: dict, area_id: int) -> RankingSettings:
    """Set how the area's rankings are shown to residents and members: ``full``,
    ``top_n`` (with ``top_n``) or ``tiers`` (cumulative percentiles; the community's
    secretary, an officer over the area)."""
    area = ranking_service.get_area(area_id)
    with atomic():
        return ranking_service.set_exposure(
            actor(),
            area,
            data["exposure"],
            top_n=data["top_n"],
            gold_pct=data["gold_pct"],
            silver_pct=data["silver_pct"],
            bronze_pct=data["bronze_pct"],
        )
