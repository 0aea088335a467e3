"""Appeal pages (申诉): file one against a rating or a points award, my appeals and the
queue (secretaries read theirs, officers decide), one appeal with the decision form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..models import AppealStatus
from ..schemas.appeals import AppealIn, DecideIn
from ..services import appeals as appeal_service
from ..services import permissions
from ..services.errors import DomainError
from .forms import domain_errors, form_errors
from .paging import page_arg, paginate

bp = Blueprint("web_appeals", __name__)

PER_PAGE = 20


def _subject_args() -> dict[str, Any]:
    source = request.form if request.method == "POST" else request.args
    return {k: source.get(k) for k in ("rating_id", "transaction_id") if source.get(k)}


@bp.route("/appeals")
@login_required
def appeals() -> ResponseReturnValue:
    """My appeals, and for secretaries and officers those of their communities."""
    status = request.args.get("status")
    if status not in {s.value for s in AppealStatus}:
        status = None
    stmt = appeal_service.list_appeals(current_user, status=status)
    result = paginate(stmt, page_arg(), PER_PAGE)
    return render_template(
        "appeals/appeals.html",
        items=result["items"],
        total=result["total"],
        page=result["page"],
        per_page=PER_PAGE,
        args={"status": status} if status else {},
        status=status,
    )


@bp.route("/appeals/new", methods=["GET", "POST"])
@login_required
def new_appeal() -> ResponseReturnValue:
    """File an appeal: ``?rating_id=`` or ``?transaction_id=``, and a reason."""
    subject = _subject_args()
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        try:
            loaded = AppealIn().load({**subject, "reason": request.form.get("reason", "")})
            with atomic():
                appeal = appeal_service.file_appeal(current_user, **loaded)
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            errors, status = domain_errors(exc), exc.status
        else:
            return redirect(url_for("web_appeals.appeal", appeal_id=appeal.id))
    return render_template(
        "appeals/form.html", subject=subject, form=request.form, errors=errors
    ), status


@bp.route("/appeals/<int:appeal_id>")
@login_required
def appeal(appeal_id: int) -> ResponseReturnValue:
    """One appeal; the decision form for an officer who may decide it."""
    a = appeal_service.get_visible_appeal(current_user, appeal_id)
    return render_template("appeals/appeal.html", a=a, form={}, errors={})


@bp.route("/appeals/<int:appeal_id>/decide", methods=["POST"])
@login_required
def decide(appeal_id: int) -> ResponseReturnValue:
    """Decide the appeal (an officer over the community, never a party)."""
    a = appeal_service.get_visible_appeal(current_user, appeal_id)
    permissions.require(current_user, "appeal.decide", a)
    raw = {k: request.form.get(k, "") for k in ("decision", "reason", "amount")}
    if not raw["amount"].strip():
        raw.pop("amount")
    try:
        loaded = DecideIn().load(raw)
        with atomic():
            appeal_service.decide(
                current_user, a, loaded["decision"], loaded["reason"], loaded.get("amount")
            )
    except ValidationError as exc:
        errors, status = form_errors(exc), 422
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        errors, status = domain_errors(exc), exc.status
    else:
        return redirect(url_for("web_appeals.appeal", appeal_id=a.id))
    a = appeal_service.get_visible_appeal(current_user, appeal_id)
    return render_template("appeals/appeal.html", a=a, form=request.form, errors=errors), status
