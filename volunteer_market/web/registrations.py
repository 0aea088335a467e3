"""Self-registration pages: the public form and status link; the secretary's queue."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..http.throttles import registration_throttle
from ..models import Area, AreaKind, RegistrationStatus
from ..schemas.registrations import RegistrationIn, RegistrationRejectIn
from ..services import areas as area_service
from ..services import permissions, registrations
from ..services.errors import DomainError
from .forms import domain_errors, form_data, form_errors
from .paging import page_arg, paginate

bp = Blueprint("web_registrations", __name__)

PER_PAGE = 30
FIELDS = ["phone", "display_name", "password", "community_id", "role", "home_unit"]


def _communities() -> list[Area]:
    return list(db.session.scalars(area_service.list_areas(kind=AreaKind.COMMUNITY)))


@bp.route("/register", methods=["GET", "POST"])
@registration_throttle
def register() -> ResponseReturnValue:
    """Show the registration form (anyone); on POST store the request for the secretary."""
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        try:
            data = RegistrationIn().load(form_data(request.form, FIELDS))
            community = db.session.get(Area, data.pop("community_id"))
            if community is None:
                raise ValidationError({"community_id": ["Unknown community."]})
            with atomic():
                _registration, token = registrations.register(community=community, **data)
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            errors, status = domain_errors(exc), exc.status
        else:
            return redirect(url_for("web_registrations.status", token=token))
    form = {k: v for k, v in request.form.items() if k != "password"}
    return render_template(
        "registrations/register.html", communities=_communities(), errors=errors, form=form
    ), status


@bp.route("/register/<token>")
def status(token: str) -> ResponseReturnValue:
    """Show the applicant the outcome of their registration (the link is the secret)."""
    registration = registrations.by_token(token[:64])
    community = db.session.get(Area, registration.community_id)
    return render_template(
        "registrations/status.html", registration=registration, community=community
    )


@bp.route("/registrations")
@login_required
def queue() -> ResponseReturnValue:
    """List the registrations of my communities, the waiting ones first (secretary)."""
    if not permissions.may(current_user, "registration.queue"):
        abort(403)
    wanted = request.args.get("status", "pending")
    values = {s.value for s in RegistrationStatus}
    state = RegistrationStatus(wanted) if wanted in values else None
    page = paginate(registrations.visible(current_user, status=state), page_arg(), PER_PAGE)
    names = {a.id: a.name for a in _communities()}
    return render_template(
        "registrations/queue.html",
        items=page["items"],
        page=page["page"],
        total=page["total"],
        per_page=PER_PAGE,
        state=state,
        names=names,
        errors={},
    )


@bp.route("/registrations/<int:registration_id>/<string:verb>", methods=["POST"])
@login_required
def decide(registration_id: int, verb: str) -> ResponseReturnValue:
    """Approve or reject (with a reason) a registration of my community."""
    registration = registrations.get_registration(current_user, registration_id)
    try:
        with atomic():
            if verb == "approve":
                registrations.approve(current_user, registration)
                flash(
                    _("已通过：%(name)s 可以用手机号登录了。", name=registration.display_name),
                    "success",
                )
            elif verb == "reject":
                data = RegistrationRejectIn().load(form_data(request.form, ["reason"]))
                registrations.reject(current_user, registration, data["reason"])
                flash(_("已驳回：%(name)s", name=registration.display_name), "success")
            else:
                abort(404)
    except ValidationError as exc:
        flash("；".join(m for ms in form_errors(exc).values() for m in ms), "error")
        return redirect(url_for("web_registrations.queue")), 303
    except DomainError as exc:
        if exc.status == 403:
            abort(403)
        flash("；".join(m for ms in domain_errors(exc).values() for m in ms), "error")
        return redirect(url_for("web_registrations.queue")), 303
    return redirect(url_for("web_registrations.queue"))
