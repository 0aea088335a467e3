"""/api/v1/needs: post, list, claim (抢单), dispatch (派单), release, cancel."""

from __future__ import annotations

from ..database import atomic
from ..models import Need
from ..schemas.common import page_of
from ..schemas.needs import DispatchIn, NeedIn, NeedOut, NeedQuery
from ..services import needs as need_service
from .common import actor, make_blueprint, paginate

blp = make_blueprint("api_needs", "/needs", "Residents' needs")


@blp.route("", methods=["POST"])
@blp.arguments(NeedIn)
@blp.response(201, NeedOut)
def create_need(data: dict) -> Need:
    """Post a need: a resident for themself; a grid worker with ``on_behalf_of`` a resident
    of their community (flagged ``on_behalf``)."""
    with atomic():
        need = need_service.create_need(actor(), **data)
        return need_service.get_need(need.id)


@blp.route("", methods=["GET"])
@blp.arguments(NeedQuery, location="query")
@blp.response(200, page_of(NeedOut))
def list_needs(args: dict) -> dict:
    """List the needs the caller may see (filters: community_id, status, category,
    project_id, mine)."""
    stmt = need_service.list_needs(
        actor(),
        community_id=args.get("community_id"),
        status=args.get("status"),
        category=args.get("category"),
        project_id=args.get("project_id"),
        mine=args.get("mine", False),
    )
    return paginate(stmt, args["page"], args["per_page"])


@blp.route("/<int:need_id>", methods=["GET"])
@blp.response(200, NeedOut)
def get_need(need_id: int) -> Need:
    """Return one need (404 if the caller may not see it)."""
    return need_service.get_visible_need(actor(), need_id)


@blp.route("/<int:need_id>/claim", methods=["POST"])
@blp.response(200, NeedOut)
def claim(need_id: int) -> Need:
    """Take an open need (member of its community) → ``claimed``; 409 if already taken."""
    with atomic():
        need = need_service.get_visible_need(actor(), need_id)
        need_service.claim(actor(), need)
        return need_service.get_need(need_id)


@blp.route("/<int:need_id>/dispatch", methods=["POST"])
@blp.arguments(DispatchIn)
@blp.response(200, NeedOut)
def dispatch(data: dict, need_id: int) -> Need:
    """Give the need to an approved project (``project_id``) or a member (``member_id``)
    of its community (secretary) → ``dispatched``."""
    with atomic():
        need = need_service.get_visible_need(actor(), need_id)
        need_service.dispatch(
            actor(), need, project_id=data.get("project_id"), member_id=data.get("member_id")
        )
        return need_service.get_need(need_id)


@blp.route("/<int:need_id>/release", methods=["POST"])
@blp.response(200, NeedOut)
def release(need_id: int) -> Need:
    """Put a claimed/dispatched need back on the board → ``open``."""
    with atomic():
        need = need_service.get_visible_need(actor(), need_id)
        need_service.release(actor(), need)
        return need_service.get_need(need_id)


@blp.route("/<int:need_id>/cancel", methods=["POST"])
@blp.response(200, NeedOut)
def cancel(need_id: int) -> Need:
    """Withdraw a need (the resident, who posted it, or the secretary) → ``cancelled``."""
    with atomic():
        need = need_service.get_visible_need(actor(), need_id)
        need_service.cancel(actor(), need)
        return need_service.get_need(need_id)
