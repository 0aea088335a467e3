"""/api/v1/deliveries: record a service session, read it, and the rating slips that a
non-participant issues to residents without an account session."""

from __future__ import annotations

from typing import Any

from flask import request

from ..database import atomic
from ..http.links import rating_slips
from ..http.uploads import read_upload, send_upload, upload_transaction
from ..models import Delivery
from ..schemas.common import page_of
from ..schemas.deliveries import (
    DeliveryIn,
    DeliveryOut,
    DeliveryQuery,
    RatingSlipsOut,
    RatingSlipsQuery,
)
from ..services import deliveries as delivery_service
from .common import (
    IMAGE_RESPONSE_DOC,
    IMAGE_UPLOAD_DOC,
    actor,
    make_blueprint,
    paginate,
    problem_response,
)

blp = make_blueprint("api_deliveries", "/deliveries", "Deliveries (service sessions)")


@blp.route("", methods=["POST"])
@blp.arguments(DeliveryIn)
@blp.response(201, DeliveryOut)
@blp.alt_response(404, response=problem_response(404))  # a project the caller may not see
def record(data: dict) -> Any:
    """Record a session (owner or active team member of an approved project).

    ``participants: [{user_id, hours}]``, ``beneficiaries: [user_id]``, optional
    ``need_id`` (closed by this delivery) and ``no_shows: [user_id]``. The response
    carries no rating code, token or link: residents rate from their own session
    (``GET /api/v1/me/pending-ratings``) or on a slip a non-participant issues.
    """
    with atomic():
        recorded = delivery_service.record_delivery(actor(), **data)
    return recorded.delivery, 201


@blp.route("/<int:delivery_id>/rating-slips", methods=["GET"])
@blp.arguments(RatingSlipsQuery, location="query")
@blp.response(200, RatingSlipsOut)
@blp.alt_response(409, response=problem_response(409))  # rated, settled, window closed
def rating_slips_of(args: dict, delivery_id: int) -> Any:
    """Issue printable rating slips (the secretary or a grid worker of the delivery's
    community who neither recorded nor served in it).

    Each beneficiary who has not rated gets a fresh one-time code, link and QR code,
    shown this once (``Cache-Control: no-store``); issuing again voids the slips that
    were out. ``user_id`` re-issues one beneficiary's slip only. 409 once rated.
    """
    with atomic():
        delivery = delivery_service.get_visible_delivery(actor(), delivery_id)
        title = delivery.project.title
        codes = delivery_service.issue_slips(actor(), delivery, user_id=args.get("user_id"))
        body = {
            "delivery_id": delivery.id,
            "project_title": title,
            "started_at": delivery.started_at,
            "rate_until": delivery.rating_deadline,
            "items": rating_slips(codes),
        }
    return body, 200, {"Cache-Control": "no-store"}


@blp.route("", methods=["GET"])
@blp.arguments(DeliveryQuery, location="query")
@blp.response(200, page_of(DeliveryOut))
def list_deliveries(args: dict) -> dict:
    """List the deliveries the caller may see (filters: project_id, community_id)."""
    stmt = delivery_service.list_deliveries(
        actor(), project_id=args.get("project_id"), community_id=args.get("community_id")
    )
    return paginate(stmt, args["page"], args["per_page"])


@blp.route("/<int:delivery_id>", methods=["GET"])
@blp.response(200, DeliveryOut)
def get_delivery(delivery_id: int) -> Delivery:
    """Return one delivery (404 if the caller may not see it)."""
    return delivery_service.get_visible_delivery(actor(), delivery_id)


@blp.route("/<int:delivery_id>/photo", methods=["PUT"])
@blp.response(200, DeliveryOut)
@blp.doc(**IMAGE_UPLOAD_DOC)
def put_photo(delivery_id: int) -> Delivery:
    """Attach the session photo (multipart field ``file``; PNG/JPEG/WebP, at most 2 MB)."""
    data = read_upload(request.files.get("file"))
    with upload_transaction() as files, atomic():
        delivery = delivery_service.get_visible_delivery(actor(), delivery_id)
        delivery_service.check_photo_allowed(actor(), delivery)
        files.replace(delivery.photo_path)
        delivery_service.set_photo(actor(), delivery, files.store(data, "file"))
        return delivery_service.get_delivery(delivery_id)


@blp.route("/<int:delivery_id>/photo", methods=["GET"])
@blp.doc(**IMAGE_RESPONSE_DOC)
def get_photo(delivery_id: int) -> Any:
    """The session photo of a delivery the caller may see."""
    delivery = delivery_service.get_visible_delivery(actor(), delivery_id)
    return send_upload(delivery.photo_path)
