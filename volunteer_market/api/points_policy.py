"""/api/v1/communities/{id}/points-policy: the community's points policy (read: anyone
with a role in it and those who run it; a new version: its secretary, an officer over
it, the admin). A version applies to later settlements only."""

from __future__ import annotations

from typing import Any

from ..database import atomic
from ..schemas.points_policy import CommunityPolicyOut, PointsPolicyIn
from ..services import areas as area_service
from ..services import permissions
from ..services import points_policy as policy_service
from ..services.errors import NotFound
from .common import actor, make_blueprint

blp = make_blueprint("api_points_policy", "/communities", "Points policy")


def _community(community_id: int) -> Any:
    community = area_service.get_area(community_id)
    if not permissions.may(actor(), "points_policy.view", community):
        raise NotFound("Community not found.")
    return community


@blp.route("/<int:community_id>/points-policy", methods=["GET"])
@blp.response(200, CommunityPolicyOut)
def get_policy(community_id: int) -> dict[str, Any]:
    """The version in force (the default while the community has none of its own), the
    version before it and the terms that changed."""
    community = _community(community_id)
    return {"community_id": community.id, **policy_service.community_policy(actor(), community)}


@blp.route("/<int:community_id>/points-policy", methods=["PUT"])
@blp.arguments(PointsPolicyIn)
@blp.response(201, CommunityPolicyOut)
def put_policy(terms: dict[str, Any], community_id: int) -> dict[str, Any]:
    """Create version n+1 with the terms given (the others are copied from the version in
    force). Applies to settlements made after it only; settled deliveries keep theirs."""
    with atomic():
        community = _community(community_id)
        policy_service.new_policy_version(actor(), community, **terms)
        view = policy_service.community_policy(actor(), community)
    return {"community_id": community.id, **view}
