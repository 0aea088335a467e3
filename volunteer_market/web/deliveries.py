"""Delivery pages: record a service session (no rating code is ever shown to its
recorder), a recorded session and its photo, and the printable rating slips that the
secretary or a non-participant grid worker issues. A delivery's ratings and settlement
are on the rating pages (``web/ratings.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..http.links import rating_slips
from ..http.uploads import send_upload, upload_transaction
from ..models import Area, Need, NeedStatus, Project, ProjectStatus, Role, TeamStatus
from ..schemas.deliveries import DeliveryIn
from ..services import deliveries as delivery_service
from ..services import needs as need_service
from ..services import permissions
from ..services import projects as project_service
from ..services import users as user_service
from ..services.errors import Conflict, ValidationFailed
from ..zones import area_zone
from .forms import domain_errors, form_errors, local_input, local_to_iso

bp = Blueprint("web_deliveries", __name__)


def _delivery_form(p: Project, team_ids: list[int]) -> tuple[dict[str, Any], dict[int, int]]:
    """Return the ``DeliveryIn`` payload of the form and ``{participant index: user id}``."""
    f = request.form
    tz = area_zone(p.community)
    participants: list[dict[str, Any]] = []
    index_of: dict[int, int] = {}
    for uid in team_ids:
        if f.get(f"participant_{uid}"):
            index_of[len(participants)] = uid
            participants.append(
                {"user_id": uid, "hours": f.get(f"hours_{uid}", "").strip() or None}
            )
    data: dict[str, Any] = {
        "project_id": p.id,
        "started_at": local_to_iso(f.get("started_at", "").strip(), tz),
        "ended_at": local_to_iso(f.get("ended_at", "").strip(), tz),
        "participants": participants,
        "beneficiaries": [v for v in f.getlist("beneficiaries") if v],
        "no_shows": [v for v in f.getlist("no_shows") if v],
    }
    if f.get("need_id"):
        data["need_id"] = f.get("need_id")
    return {k: v for k, v in data.items() if v is not None}, index_of


def _per_person_errors(
    errors: dict[str, list[str]], index_of: dict[int, int]
) -> dict[str, list[str]]:
    """Rename ``participants.<i>.hours`` to ``hours_<user id>`` for the form."""
    out: dict[str, list[str]] = {}
    for key, msgs in errors.items():
        parts = key.split(".")
        if parts[0] == "participants" and len(parts) >= 2 and parts[1].isdigit():
            uid = index_of.get(int(parts[1]))
            key = f"hours_{uid}" if uid is not None else "participants"
        out.setdefault(key, []).extend(msgs)
    return out


@bp.route("/projects/<int:project_id>/deliveries/new", methods=["GET", "POST"])
@login_required
def new_delivery(project_id: int) -> ResponseReturnValue:
    """Record a service session; afterwards say how the residents rate (no codes here)."""
    p = project_service.get_visible_project(current_user, project_id)
    permissions.require(current_user, "delivery.record", p)
    community = db.session.get(Area, p.community_id)
    assert community is not None
    members = [(p.owner_id, p.owner.display_name)] + [
        (m.user_id, m.user.display_name) for m in project_service.team_of(p, [TeamStatus.ACTIVE])
    ]
    residents = user_service.holders_of(Role.RESIDENT, community)
    open_needs = list(
        db.session.execute(
            need_service.list_needs(current_user, community_id=p.community_id).where(
                sa.or_(
                    Need.status == NeedStatus.OPEN,
                    Need.project_id == p.id,
                    Need.assignee_id.in_([uid for uid, _n in members]),
                ),
                Need.status.in_(need_service.LIVE_STATUSES),
            )
        )
        .unique()
        .scalars()
    )
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if p.status != ProjectStatus.APPROVED:
            raise Conflict(f"A project that is {p.status.value} takes no deliveries.")
        data, index_of = _delivery_form(p, [uid for uid, _n in members])
        try:
            loaded = DeliveryIn().load(data)
            with upload_transaction() as files, atomic():
                recorded = delivery_service.record_delivery(current_user, **loaded)
                stored = files.save(request.files.get("photo"), "photo")
                if stored:
                    delivery_service.set_photo(current_user, recorded.delivery, stored)
        except ValidationError as exc:
            errors, status = _per_person_errors(form_errors(exc), index_of), 422
        except ValidationFailed as exc:
            errors, status = _per_person_errors(domain_errors(exc), index_of), 422
        else:
            resp = render_template("deliveries/delivery_recorded.html", p=p, d=recorded.delivery)
            return resp, 201
    tz = area_zone(community)
    return render_template(
        "deliveries/delivery_form.html",
        p=p,
        members=members,
        residents=residents,
        open_needs=open_needs,
        form=request.form,
        errors=errors,
        default_end=local_input(datetime.now(tz), tz),
    ), status


@bp.route("/deliveries/<int:delivery_id>")
@login_required
def delivery(delivery_id: int) -> ResponseReturnValue:
    """A recorded session (never shows a rating code)."""
    d = delivery_service.get_visible_delivery(current_user, delivery_id)
    return render_template("deliveries/delivery.html", d=d, p=d.project)


@bp.route("/deliveries/<int:delivery_id>/photo")
@login_required
def delivery_photo(delivery_id: int) -> ResponseReturnValue:
    """The photo of a recorded session I may see."""
    d = delivery_service.get_visible_delivery(current_user, delivery_id)
    return send_upload(d.photo_path)


@bp.route("/deliveries/<int:delivery_id>/slips", methods=["GET", "POST"])
@login_required
def rating_slips_page(delivery_id: int) -> ResponseReturnValue:
    """Printable rating slips: GET explains and offers the button, POST issues fresh
    slips (voiding those out) and shows them once, for the secretary or a grid worker
    who neither recorded nor served in the delivery."""
    d = delivery_service.get_visible_delivery(current_user, delivery_id)
    permissions.require(current_user, "delivery.slips", d)
    p = d.project
    if request.method == "GET":
        return render_template("deliveries/slips.html", d=d, p=p, slips=None)
    raw = request.form.get("user_id", "").strip()
    user_id = int(raw) if raw.isdigit() and len(raw) < 12 else None
    if raw and user_id is None:
        raise ValidationFailed("user_id is invalid.", errors={"user_id": ["Invalid."]})
    with atomic():
        codes = delivery_service.issue_slips(current_user, d, user_id=user_id)
    # Shown once and never stored: no redirect, but the history entry becomes the GET page
    # (static/history.js), so back and reload never re-issue or show a resubmission error.
    resp = render_template(
        "deliveries/slips.html",
        d=d,
        p=p,
        slips=rating_slips(codes),
        replace_url=url_for("web_deliveries.rating_slips_page", delivery_id=d.id),
    )
    return resp, 200, {"Cache-Control": "no-store"}
