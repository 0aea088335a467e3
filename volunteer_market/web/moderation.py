"""Comment moderation and call-back pages (the community's secretary).

* ``/moderation``: the queue of reported comments (hide with a reason, dismiss) and the
  hidden comments (unhide); the hide and unhide forms post to ``web_ratings``.
* ``/callbacks``: today's sample of proxy ratings to phone back (回访), with the
  residents' phones, and the outcome form (``/callbacks/<rating_id>``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..models import Area, AreaKind, ReportStatus, Role
from ..schemas.moderation import CallbackIn, OptionalReasonIn
from ..services import callbacks as callback_service
from ..services import deliveries as delivery_service
from ..services import moderation as moderation_service
from ..services import permissions
from ..services import ratings as rating_service
from ..services.errors import DomainError, NotFound
from .forms import digits, domain_errors, form_errors

bp = Blueprint("web_moderation", __name__)

QUEUE_LIMIT = 100


def _communities() -> list[Area]:
    """The communities whose queue the current user reads (403 when none)."""
    if not permissions.may(current_user, "moderation.queue"):
        abort(403)
    ids = permissions.communities_of(current_user, [Role.SECRETARY])
    return list(
        db.session.scalars(
            sa.select(Area)
            .where(Area.id.in_(sorted(ids) or [0]), Area.kind == AreaKind.COMMUNITY)
            .order_by(Area.path)
        )
    )


def _chosen(communities: list[Area], raw: str | None) -> Area | None:
    if raw:
        cid = digits(raw)
        chosen = next((a for a in communities if a.id == cid), None)
        if chosen is None:
            abort(404)
        return chosen
    return communities[0] if communities else None


def _render_queue(
    community_id: str | None, *, errors: dict[str, list[str]] | None = None, status: int = 200
) -> ResponseReturnValue:
    if status != 200:
        db.session.rollback()
    communities = _communities()
    chosen = _chosen(communities, community_id)
    which = request.args.get("status", ReportStatus.OPEN.value)
    if which not in moderation_service.REPORT_STATUSES:
        which = ReportStatus.OPEN.value
    items: list[dict[str, Any]] = []
    hidden: list[dict[str, Any]] = []
    if chosen is not None:
        stmt = moderation_service.reports_query(current_user, chosen, which)
        reports = list(db.session.scalars(stmt.limit(QUEUE_LIMIT)))
        items = moderation_service.present_reports(current_user, reports)
        hidden = moderation_service.hidden_comments(current_user, chosen)
    return render_template(
        "moderation/queue.html",
        communities=communities,
        chosen=chosen,
        items=items,
        hidden=hidden,
        which=which,
        statuses=moderation_service.REPORT_STATUSES,
        errors=errors or {},
    ), status


@bp.route("/moderation")
@login_required
def queue() -> ResponseReturnValue:
    """Reported comments of a community I am the secretary of (``?community_id=``)."""
    return _render_queue(request.args.get("community_id"))


@bp.route("/comment-reports/<int:report_id>/dismiss", methods=["POST"])
@login_required
def dismiss(report_id: int) -> ResponseReturnValue:
    """Dismiss one open report (the comment stays visible)."""
    try:
        report = moderation_service.get_visible_report(current_user, report_id)
    except NotFound:
        abort(404)
    community_id = str(report.community_id)
    try:
        loaded = OptionalReasonIn().load({"reason": request.form.get("reason", "")})
        with atomic():
            found = moderation_service.get_visible_report(current_user, report_id)
            moderation_service.dismiss_report(current_user, found, loaded.get("reason"))
    except ValidationError as exc:
        return _render_queue(community_id, errors=form_errors(exc), status=422)
    except DomainError as exc:
        return _render_queue(community_id, errors=domain_errors(exc), status=exc.status)
    flash(_("举报已驳回，评语继续显示。"), "success")
    return redirect(url_for("web_moderation.queue", community_id=community_id))


# --- call-backs (回访) --------------------------------------------------------------


def _render_callbacks(
    community_id: str | None,
    *,
    errors: dict[str, list[str]] | None = None,
    form: Any = None,
    status: int = 200,
) -> ResponseReturnValue:
    if status != 200:
        db.session.rollback()
    communities = _communities()
    chosen = _chosen(communities, community_id)
    sample: list[dict[str, Any]] = []
    recorded: list[dict[str, Any]] = []
    if chosen is not None:
        sample = callback_service.sample(current_user, chosen)
        recorded = callback_service.recent_callbacks(current_user, chosen)
    return render_template(
        "moderation/callbacks.html",
        communities=communities,
        chosen=chosen,
        sample=sample,
        recorded=recorded,
        errors=errors or {},
        form=form or {},
    ), status


@bp.route("/callbacks")
@login_required
def callbacks() -> ResponseReturnValue:
    """Today's sample of a community's proxy ratings to phone back."""
    return _render_callbacks(request.args.get("community_id"))


@bp.route("/callbacks/<int:rating_id>", methods=["POST"])
@login_required
def record(rating_id: int) -> ResponseReturnValue:
    """Record the outcome of a call-back (confirmed, disputed with a note, unreachable)."""
    try:
        rating = rating_service.get_visible_rating(current_user, rating_id)
    except NotFound:
        abort(404)
    community_id = str(delivery_service.get_delivery(rating.delivery_id).community_id)
    raw = {k: request.form.get(k, "") for k in ("outcome", "note")}
    try:
        loaded = CallbackIn().load(raw)
        with atomic():
            rating = rating_service.get_visible_rating(current_user, rating_id)
            callback_service.record_callback(
                current_user, rating, loaded["outcome"], loaded.get("note")
            )
    except ValidationError as exc:
        return _render_callbacks(community_id, errors=form_errors(exc), form=raw, status=422)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _render_callbacks(
            community_id, errors=domain_errors(exc), form=raw, status=exc.status
        )
    flash(_("回访结果已记录。"), "success")
    return redirect(url_for("web_moderation.callbacks", community_id=community_id))
