"""/api/v1/integrity/signals: patterns a secretary (own community) or an officer
(subtree) should look at, each linking to its deliveries."""

from __future__ import annotations

from typing import Any

from ..models import utcnow
from ..schemas.integrity import SignalsOut, SignalsQuery
from ..services import areas as area_service
from ..services import integrity as integrity_service
from .common import actor, make_blueprint, problem_response

blp = make_blueprint("api_integrity", "/integrity", "Integrity signals")


@blp.route("/signals", methods=["GET"])
@blp.arguments(SignalsQuery, location="query")
@blp.response(200, SignalsOut)
@blp.alt_response(404, response=problem_response(404))  # no such community
def signals(args: dict) -> dict[str, Any]:
    """The signals of a community over the last 90 days (``community_id`` required):
    ``repeat_rater``, ``reciprocal_rating``, ``all_five_streak``, ``odd_hours``,
    ``overlap``, ``chronic_no_show``, ``rated_from_recorder``, ``disputed_callback``; at
    most ``signal_cap`` (100) per kind and ``ids_cap`` (50) delivery ids per signal,
    ``totals`` giving each kind's count before the cap."""
    community = area_service.get_area(args["community_id"])
    now = utcnow()
    found = integrity_service.report(actor(), community, now=now)
    return {
        "community_id": community.id,
        "since": now - integrity_service.WINDOW,
        "items": found.items,
        "totals": found.totals,
        "signal_cap": integrity_service.SIGNAL_CAP,
        "ids_cap": integrity_service.IDS_CAP,
    }
