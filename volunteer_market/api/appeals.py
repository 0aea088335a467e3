"""/api/v1/appeals: file an appeal (申诉) against a rating or a points award, list and
read them, and the officer's decision (which posts through the ledger)."""

from __future__ import annotations

from typing import Any

from ..database import atomic
from ..models import Appeal
from ..schemas.appeals import AppealIn, AppealOut, AppealQuery, DecideIn
from ..schemas.common import page_of
from ..services import appeals as appeal_service
from .common import actor, make_blueprint, paginate, problem_response
from .idempotency import IDEMPOTENCY_PARAMETER, idempotent

blp = make_blueprint("api_appeals", "/appeals", "Appeals (申诉)")


@blp.route("", methods=["POST"])
@blp.arguments(AppealIn)
@blp.response(201, AppealOut)
@blp.alt_response(404, response=problem_response(404))  # a subject the caller may not see
@blp.alt_response(409, response=problem_response(409))  # after 14 days; a second open one
def file_appeal(data: dict) -> Appeal:
    """Appeal a rating (``rating_id``: a member who served in its delivery, or the
    resident of a proxy rating) or a points award (``transaction_id``: its member),
    within 14 days, with a ``reason`` → ``status: open``."""
    with atomic():
        return appeal_service.file_appeal(
            actor(),
            rating_id=data.get("rating_id"),
            transaction_id=data.get("transaction_id"),
            reason=data["reason"],
        )


@blp.route("", methods=["GET"])
@blp.arguments(AppealQuery, location="query")
@blp.response(200, page_of(AppealOut))
def list_appeals(args: dict) -> dict[str, Any]:
    """Appeals you filed, of your community (secretary), of your subtree (officer);
    filters ``status``, ``community_id``."""
    stmt = appeal_service.list_appeals(
        actor(), status=args.get("status"), community_id=args.get("community_id")
    )
    return paginate(stmt, args["page"], args["per_page"])


@blp.route("/<int:appeal_id>", methods=["GET"])
@blp.response(200, AppealOut)
def get_appeal(appeal_id: int) -> Appeal:
    """One appeal you may see (404 otherwise)."""
    return appeal_service.get_visible_appeal(actor(), appeal_id)


@blp.route("/<int:appeal_id>/decide", methods=["POST"])
@idempotent
@blp.arguments(DecideIn)
@blp.response(200, AppealOut)
@blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
def decide(data: dict, appeal_id: int) -> Any:
    """Decide once (an officer over the community, never a party to it):
    ``{decision: upheld/dismissed, reason, amount?}``. ``upheld`` posts a reversing or
    adjusting transaction with the appeal as its reason (``transaction_id``);
    ``dismissed`` posts nothing. A second decision is 409."""
    with atomic():
        appeal = appeal_service.get_visible_appeal(actor(), appeal_id)
        return appeal_service.decide(
            actor(), appeal, data["decision"], data["reason"], data.get("amount")
        )
