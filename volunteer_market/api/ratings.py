"""/api/v1 ratings and settlement: rate (logged in, by proxy, or by one-time code),
change, reply, read, settle, and the secretary's settlement queue."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ..database import atomic
from ..extensions import db
from ..http.throttles import mark_code_failed, rating_code_throttle
from ..models import Delivery, Rating, utcnow
from ..schemas.ratings import (
    ByCodeIn,
    ByCodeOut,
    DeliveryRatingsOut,
    PendingRatingsOut,
    QueuePageOut,
    QueueQuery,
    RatingIn,
    RatingOut,
    RatingPatchIn,
    ReplyIn,
    ReplyOut,
    SettleIn,
    SettlementOut,
)
from ..services import deliveries as delivery_service
from ..services import permissions
from ..services import ratings as rating_service
from ..services import settlement as settlement_service
from .common import actor, make_blueprint, paginate, problem_response, public
from .idempotency import IDEMPOTENCY_PARAMETER, idempotent

blp = make_blueprint("api_ratings", "", "Ratings and settlement")


def _present_one(rating_id: int, delivery: Delivery) -> dict[str, Any]:
    """Return one rating (replies loaded) as the caller may see it, with the status of
    ``delivery`` (its delivery, already loaded by the handler: not read again)."""
    rating = db.session.execute(
        sa.select(Rating)
        .where(Rating.id == rating_id)
        .options(selectinload(Rating.replies))
        .execution_options(populate_existing=True)
    ).scalar_one()
    return _present(rating, delivery)


def _present_new(rating: Rating, delivery: Delivery) -> dict[str, Any]:
    """Return a rating inserted in this transaction as the caller may see it, from the
    object itself: every column was written from it, and no reply can exist yet (a
    reply names a rating that other transactions cannot see until this one commits)."""
    set_committed_value(rating, "replies", [])
    return _present(rating, delivery)


def _present(rating: Rating, delivery: Delivery) -> dict[str, Any]:
    if rating.delivery_id != delivery.id:  # pragma: no cover - a programming error
        raise ValueError("the rating is not of this delivery")
    delivery_status = delivery.status.value
    identities = permissions.may(actor(), "rating.identities", delivery)
    item = rating_service.present_ratings(actor(), [rating], identities=identities)[0]
    item["delivery_status"] = delivery_status
    return item


@blp.route("/deliveries/<int:delivery_id>/ratings", methods=["POST"])
@blp.arguments(RatingIn)
@blp.response(201, RatingOut)
def rate(data: dict, delivery_id: int) -> dict[str, Any]:
    """Rate a delivery you received (once, inside its window): ``{score: 1..5, comment?}``.

    A grid worker or the secretary of its community rates for a beneficiary with
    ``on_behalf_of`` (flagged as a proxy rating). The last beneficiary's rating settles
    the delivery (``delivery_status: settled``). A second rating is 409: change it
    with ``PATCH /api/v1/ratings/{id}``.
    """
    with atomic():
        delivery = delivery_service.get_visible_delivery(actor(), delivery_id, with_people=False)
        rated = rating_service.rate(
            actor(),
            delivery,
            data["score"],
            data.get("comment"),
            on_behalf_of=data.get("on_behalf_of"),
        )
        return _present_new(rated.rating, rated.delivery)


@blp.route("/me/pending-ratings", methods=["GET"])
@blp.response(200, PendingRatingsOut)
def pending_ratings() -> dict[str, Any]:
    """Deliveries you received and may still rate from this session, deadline first
    (``等您评价``): rate each with ``POST /api/v1/deliveries/{id}/ratings``."""
    pending = rating_service.to_rate(actor())
    names = rating_service.titles(pending)
    return {
        "items": [
            {
                "delivery_id": d.id,
                "project_title": names.get(d.id, ""),
                "started_at": d.started_at,
                "rate_until": d.rating_deadline,
            }
            for d in pending
        ]
    }


@blp.route("/deliveries/<int:delivery_id>/ratings", methods=["GET"])
@blp.response(200, DeliveryRatingsOut)
def list_ratings(delivery_id: int) -> dict[str, Any]:
    """Return a delivery's ratings: members see scores, comments and replies but never
    who gave which; the community's secretary and the officers above it see who."""
    delivery = delivery_service.get_visible_delivery(actor(), delivery_id)
    return rating_service.delivery_ratings(actor(), delivery)


@blp.route("/ratings/<int:rating_id>", methods=["PATCH"])
@blp.arguments(RatingPatchIn)
@blp.response(200, RatingOut)
def change(data: dict, rating_id: int) -> dict[str, Any]:
    """Change your rating (score and/or comment) inside the window, until settlement."""
    with atomic():
        rating = rating_service.get_visible_rating(actor(), rating_id)
        rating_service.change_rating(actor(), rating, **data)
        delivery = delivery_service.get_delivery(rating.delivery_id)
        return _present_one(rating.id, delivery)


@blp.route("/ratings/<int:rating_id>/reply", methods=["POST"])
@blp.arguments(ReplyIn)
@blp.response(201, ReplyOut)
def reply(data: dict, rating_id: int) -> dict[str, Any]:
    """Reply once to a rating of a delivery you served in."""
    with atomic():
        rating = rating_service.get_visible_rating(actor(), rating_id)
        row = rating_service.reply(actor(), rating, data["text"])
        return {
            "member_id": row.member_id,
            "display_name": actor().display_name,
            "text": row.text,
            "created_at": row.created_at,
        }


@blp.route("/ratings/by-code", methods=["POST"])
@public
@rating_code_throttle
@blp.arguments(ByCodeIn)
@blp.response(201, ByCodeOut)
@blp.alt_response(429, response=problem_response(429))  # too many wrong codes from this IP
def rate_by_code(data: dict) -> dict[str, Any]:
    """Rate without an account: ``{code: "123456" | token, score, comment?}`` (no bearer
    token). A wrong, used or expired code gets one generic 422; 20 failures an hour
    per IP, then 429."""
    try:
        with atomic():
            rated = rating_service.rate_by_code(
                code=data.get("code"),
                token=data.get("token"),
                score=data["score"],
                comment=data.get("comment"),
            )
            return {
                "status": "rated",
                "score": rated.rating.score,
                "comment": rated.rating.comment,
                "delivery_status": rated.delivery.status.value,
            }
    except rating_service.InvalidRatingCode:
        mark_code_failed()
        raise


@blp.route("/deliveries/<int:delivery_id>/settle", methods=["POST"])
@idempotent
@blp.arguments(SettleIn)
@blp.response(200, SettlementOut)
@blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
def settle(data: dict, delivery_id: int) -> dict[str, Any]:
    """Settle a delivery after its rating window (the secretary of its community).

    Nobody rated: ``confirm_unrated: true`` is required (else 409) and the multiplier
    is 1.0. A second settle is 409 and posts nothing; a retry with the same
    ``Idempotency-Key`` replays the first response.
    """
    with atomic():
        delivery = delivery_service.get_visible_delivery(actor(), delivery_id, with_people=False)
        settlement = settlement_service.settle(
            actor(), delivery, confirm_unrated=data["confirm_unrated"]
        )
        return settlement_service.present(settlement)


@blp.route("/deliveries/<int:delivery_id>/settlement", methods=["GET"])
@blp.response(200, SettlementOut)
def get_settlement(delivery_id: int) -> dict[str, Any]:
    """Return the settlement of a delivery you may see (404 until it is settled)."""
    delivery_service.get_visible_delivery(actor(), delivery_id)
    return settlement_service.present(settlement_service.get_settlement(delivery_id))


@blp.route("/settlement-queue", methods=["GET"])
@blp.arguments(QueueQuery, location="query")
@blp.response(200, QueuePageOut)
def settlement_queue(args: dict) -> dict[str, Any]:
    """Deliveries awaiting settlement in your communities (secretary), closed windows first."""
    stmt = settlement_service.queue(actor(), community_id=args.get("community_id"))
    page = paginate(stmt, args["page"], args["per_page"], scalars=False)
    now = utcnow()
    page["items"] = [settlement_service.queue_row(row, now) for row in page["items"]]
    return page
