"""/api/v1/dashboards/communities/{id}: a community's figures over a period (its
secretary, officers over it); each figure is defined in ``services/dashboards.py``."""

from __future__ import annotations

from typing import Any

from ..schemas.dashboards import DashboardOut, DashboardQuery
from ..services import areas as area_service
from ..services import dashboards
from .common import actor, make_blueprint

blp = make_blueprint("api_dashboards", "/dashboards", "Community dashboard")


@blp.route("/communities/<int:community_id>", methods=["GET"])
@blp.arguments(DashboardQuery, location="query")
@blp.response(200, DashboardOut)
def community_dashboard(args: dict, community_id: int) -> dict[str, Any]:
    """Points and counted hours settled per month, needs posted per grid (open, served),
    approved menu projects nobody ordered, members, active members and the participation
    rate, over ``period`` (a year, quarter or month; default this year)."""
    community = area_service.get_area(community_id)
    return dashboards.dashboard(actor(), community, args.get("period"))
