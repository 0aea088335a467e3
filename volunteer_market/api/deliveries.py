"""/api/v1/deliveries: record a service session (with one-time rating codes), read it."""

from __future__ import annotations

from typing import Any

from flask import request

from ..database import atomic
from ..http.links import rating_codes
from ..http.uploads import read_upload, send_upload, upload_dir
from ..models import Delivery
from ..schemas.common import page_of
from ..schemas.deliveries import DeliveryCreatedOut, DeliveryIn, DeliveryOut, DeliveryQuery
from ..services import deliveries as delivery_service
from ..services import uploads
from .common import (
    IMAGE_RESPONSE_DOC,
    IMAGE_UPLOAD_DOC,
    actor,
    make_blueprint,
    paginate,
    problem_response,
)

blp = make_blueprint("api_deliveries", "/deliveries", "Deliveries (service sessions)")


class _Created:
    """A delivery plus the raw rating codes, for dumping with :class:`DeliveryCreatedOut`."""

    def __init__(self, delivery: Delivery, codes: list[dict[str, Any]]):
        self._delivery = delivery
        self.rating_codes = codes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._delivery, name)


@blp.route("", methods=["POST"])
@blp.arguments(DeliveryIn)
@blp.response(201, DeliveryCreatedOut)
@blp.alt_response(404, response=problem_response(404))  # a project the caller may not see
def record(data: dict) -> Any:
    """Record a session (owner or active team member of an approved project).

    ``participants: [{user_id, hours}]``, ``beneficiaries: [user_id]``, optional
    ``need_id`` (closed by this delivery) and ``no_shows: [user_id]``. The response is
    the only place the beneficiaries' raw rating codes ever appear.
    """
    with atomic():
        recorded = delivery_service.record_delivery(actor(), **data)
    return _Created(recorded.delivery, rating_codes(recorded)), 201, {"Cache-Control": "no-store"}


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
    with atomic():
        delivery = delivery_service.get_visible_delivery(actor(), delivery_id)
        delivery_service.check_photo_allowed(actor(), delivery)
        name = uploads.store_image(data, upload_dir(), "file")
        try:
            delivery_service.set_photo(actor(), delivery, name)
        except Exception:
            uploads.remove(upload_dir(), name)
            raise
        return delivery_service.get_delivery(delivery_id)


@blp.route("/<int:delivery_id>/photo", methods=["GET"])
@blp.doc(**IMAGE_RESPONSE_DOC)
def get_photo(delivery_id: int) -> Any:
    """The session photo of a delivery the caller may see."""
    delivery = delivery_service.get_visible_delivery(actor(), delivery_id)
    return send_upload(delivery.photo_path)
