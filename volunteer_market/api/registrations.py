"""/api/v1/registrations: self-registration (在职党员到社区报到) and its decision."""

from __future__ import annotations

from typing import Any

from ..database import atomic
from ..http.throttles import registration_throttle
from ..models import Area, Registration
from ..schemas.common import page_of
from ..schemas.registrations import (
    RegistrationCreatedOut,
    RegistrationIn,
    RegistrationOut,
    RegistrationQuery,
    RegistrationRejectIn,
)
from ..services import areas as area_service
from ..services import registrations
from ..services.errors import NotFound, ValidationFailed
from .common import actor, make_blueprint, paginate, problem_response, public

blp = make_blueprint("api_registrations", "/registrations", "Self-registration (到社区报到)")


def _community(community_id: int) -> Area:
    try:
        return area_service.get_area(community_id)
    except NotFound:
        raise ValidationFailed(
            "Unknown community.", errors={"community_id": ["Unknown community."]}
        ) from None


@blp.route("", methods=["POST"])
@public
@registration_throttle
@blp.arguments(RegistrationIn)
@blp.response(201, RegistrationCreatedOut)
@blp.alt_response(409, response=problem_response(409))  # has an account / already waiting
@blp.alt_response(429, response=problem_response(429))  # too many registrations
def create_registration(data: dict) -> dict[str, Any]:
    """Register with a community as a member or resident; the secretary decides."""
    community = _community(data.pop("community_id"))
    with atomic():
        registration, token = registrations.register(community=community, **data)
    return {**_out(registration), "status_token": token}


def _out(registration: Registration) -> dict[str, Any]:
    return {c: getattr(registration, c) for c in RegistrationOut().fields}


@blp.route("", methods=["GET"])
@blp.arguments(RegistrationQuery, location="query")
@blp.response(200, page_of(RegistrationOut))
def list_registrations(args: dict) -> dict:
    """List the registrations of my communities (secretary), newest first."""
    stmt = registrations.visible(
        actor(), status=args.get("status"), community_id=args.get("community_id")
    )
    return paginate(stmt, args["page"], args["per_page"])


@blp.route("/<int:registration_id>/approve", methods=["POST"])
@blp.response(200, RegistrationOut)
def approve(registration_id: int) -> Registration:
    """Approve: the account exists and signs in with its phone number."""
    with atomic():
        registration = registrations.get_registration(actor(), registration_id)
        registrations.approve(actor(), registration)
    return registration


@blp.route("/<int:registration_id>/reject", methods=["POST"])
@blp.arguments(RegistrationRejectIn)
@blp.response(200, RegistrationOut)
def reject(data: dict, registration_id: int) -> Registration:
    """Reject with a reason (the applicant sees it on their status link)."""
    with atomic():
        registration = registrations.get_registration(actor(), registration_id)
        registrations.reject(actor(), registration, data["reason"])
    return registration
