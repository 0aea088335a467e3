"""Rating and settlement pages.

* ``/rate`` and ``/rate/<token>``: the password-free rating page for residents
  (six digits, or the QR link) -> big star buttons -> optional comment -> done.
  One decision per screen, large tap targets; the code travels in a hidden field
  (never in a URL) and is used up only by the final submit. Every step that meets a
  wrong, used or expired code shows one generic message and counts as a failure
  for the per-IP throttle (``http/throttles.py``).
* ``/deliveries/<id>/ratings``: a delivery's ratings for everyone who may see it
  (identities only for the secretary and officers), with the forms the viewer may
  use: rate, proxy-rate, change, reply, settle; report a comment (participants),
  hide or unhide it (the secretary: ``/ratings/<id>/report|hide|unhide``).
* ``/settlement``: the secretary's queue of deliveries awaiting settlement.
* ``/ratings``: ratings I received (members, with reply) and deliveries I may rate.
"""

from __future__ import annotations

import re
from typing import Any, cast

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..http.throttles import mark_code_failed, rating_code_throttle
from ..models import Delivery, Rating
from ..schemas.moderation import OptionalReasonIn, ReasonIn
from ..schemas.ratings import RatingIn, RatingPatchIn, ReplyIn, SettleIn
from ..services import deliveries as delivery_service
from ..services import moderation as moderation_service
from ..services import permissions
from ..services import ratings as rating_service
from ..services import settlement as settlement_service
from ..services.errors import DomainError, NotFound
from .forms import domain_errors, form_errors, joined
from .paging import page_arg, paginate

bp = Blueprint("web_ratings", __name__)

_INT_RE = re.compile(r"^\d{1,9}$")
SCORES = (1, 2, 3, 4, 5)
PER_PAGE = 20


def _int_or_raw(value: str | None) -> Any:
    """Return a form value as an int when it is digits, else unchanged (the schema refuses)."""
    value = (value or "").strip()
    return int(value) if _INT_RE.match(value) else value


# --- password-free rating (public) ---------------------------------------------


def _code_error_page(template: str, status: int = 422, **context: Any) -> ResponseReturnValue:
    mark_code_failed()
    return render_template(
        template, error=_("这个评价码无效：可能输错了、已经用过或已过期。"), **context
    ), status


def _score_from_form() -> int | None:
    value = _int_or_raw(request.form.get("score"))
    return value if isinstance(value, int) and value in SCORES else None


@bp.route("/rate", methods=["GET"])
def rate_code_form() -> ResponseReturnValue:
    """Show the form for the six-digit rating code."""
    return render_template("ratings/code.html")


@bp.route("/rate", methods=["POST"])
@rating_code_throttle
def rate_with_code() -> ResponseReturnValue:
    """Walk the code flow: code -> stars -> comment -> done (``step`` says where)."""
    code = (request.form.get("code") or "").strip().replace(" ", "")
    step = request.form.get("step", "code")
    # each step answers the POST itself (the code is never stored): the history entry
    # becomes the code form (static/history.js), so back never asks to resubmit
    g.replace_url = url_for("web_ratings.rate_code_form")
    if not rating_service.CODE_RE.match(code):
        return render_template(
            "ratings/code.html", error=_("请输入 6 位数字评价码。"), code=code
        ), 422
    try:
        about = rating_service.describe_code(code=code)
    except rating_service.InvalidRatingCode:
        return _code_error_page("ratings/code.html", code=code)
    return _rate_step(step, about, action=url_for("web_ratings.rate_with_code"), code=code)


@bp.route("/rate/<token>", methods=["GET"])
@rating_code_throttle
def rate_token_form(token: str) -> ResponseReturnValue:
    """Open the rating page from the QR code: straight to the stars."""
    try:
        about = rating_service.describe_code(token=token)
    except rating_service.InvalidRatingCode:
        return _code_error_page("ratings/invalid.html", status=404)
    return render_template(
        "ratings/stars.html",
        about=about,
        action=url_for("web_ratings.rate_with_token", token=token),
        code=None,
    )


@bp.route("/rate/<token>", methods=["POST"])
@rating_code_throttle
def rate_with_token(token: str) -> ResponseReturnValue:
    """Walk the QR flow: stars -> comment -> done."""
    try:
        about = rating_service.describe_code(token=token)
    except rating_service.InvalidRatingCode:
        return _code_error_page("ratings/invalid.html", status=404)
    step = request.form.get("step", "score")
    g.replace_url = url_for("web_ratings.rate_token_form", token=token)
    return _rate_step(
        step, about, action=url_for("web_ratings.rate_with_token", token=token), token=token
    )


def _rate_step(
    step: str,
    about: dict[str, Any],
    *,
    action: str,
    code: str | None = None,
    token: str | None = None,
) -> ResponseReturnValue:
    context = {"about": about, "action": action, "code": code}
    if step == "code":
        return render_template("ratings/stars.html", **context)
    score = _score_from_form()
    if score is None:
        return render_template(
            "ratings/stars.html", error=_("请点选 1 到 5 颗星。"), **context
        ), 422
    if step == "score":
        return render_template("ratings/comment.html", score=score, **context)
    if step != "submit":
        return render_template("ratings/stars.html", **context), 422
    comment = request.form.get("comment", "")
    try:
        with atomic():
            rated = rating_service.rate_by_code(
                code=code,
                token=token,
                score=score,
                comment=comment,
                submitted_by=current_user if current_user.is_authenticated else None,
            )
            settled = rated.settlement is not None
    except rating_service.InvalidRatingCode:
        template = "ratings/code.html" if code is not None else "ratings/invalid.html"
        return _code_error_page(template, code=code)
    except DomainError as exc:
        return render_template(
            "ratings/comment.html",
            score=score,
            comment=comment,
            errors=domain_errors(exc),
            **context,
        ), exc.status
    return render_template("ratings/done.html", score=score, settled=settled)


# --- a delivery's ratings (signed in) ------------------------------------------


def _visible_delivery(delivery_id: int) -> Delivery:
    try:
        return delivery_service.get_visible_delivery(current_user, delivery_id)
    except NotFound:
        abort(404)


def _render_delivery(
    delivery_id: int,
    *,
    errors: dict[str, list[str]] | None = None,
    form: Any = None,
    status: int = 200,
) -> ResponseReturnValue:
    if status != 200:
        db.session.rollback()
    delivery = _visible_delivery(delivery_id)
    view = rating_service.delivery_ratings(current_user, delivery)
    settlement = None
    if delivery.status.value == "settled":
        try:
            settlement = settlement_service.present(settlement_service.get_settlement(delivery.id))
        except NotFound:
            settlement = None
    names = {p.user_id: p.user.display_name for p in delivery.participants}
    return (
        render_template(
            "ratings/delivery.html",
            delivery=delivery,
            title=rating_service.titles([delivery]).get(delivery.id, ""),
            view=view,
            settlement=settlement,
            participant_names=names,
            scores=SCORES,
            errors=errors or {},
            form=form or {},
        ),
        status,
    )


@bp.route("/deliveries/<int:delivery_id>/ratings")
@login_required
def delivery(delivery_id: int) -> ResponseReturnValue:
    """Show a delivery's ratings with the forms the viewer may use."""
    return _render_delivery(delivery_id)


def _fail(delivery_id: int, exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, ValidationError):
        return _render_delivery(delivery_id, errors=form_errors(exc), form=request.form, status=422)
    assert isinstance(exc, DomainError)
    return _render_delivery(
        delivery_id, errors=domain_errors(exc), form=request.form, status=exc.status
    )


@bp.route("/deliveries/<int:delivery_id>/ratings", methods=["POST"])
@login_required
def rate(delivery_id: int) -> ResponseReturnValue:
    """Rate a delivery I received, or (grid worker, secretary) for a beneficiary."""
    data: dict[str, Any] = {
        "score": _int_or_raw(request.form.get("score")),
        "comment": request.form.get("comment", ""),
    }
    if request.form.get("on_behalf_of"):
        data["on_behalf_of"] = _int_or_raw(request.form.get("on_behalf_of"))
    try:
        loaded = RatingIn().load(data)
        with atomic():
            d = _visible_delivery(delivery_id)
            rated = rating_service.rate(
                current_user,
                d,
                loaded["score"],
                loaded["comment"],
                on_behalf_of=loaded["on_behalf_of"],
            )
            settled = rated.settlement is not None
    except (ValidationError, DomainError) as exc:
        return _fail(delivery_id, exc)
    flash(_("评价已提交，谢谢！"), "success")
    if settled:
        flash(_("所有受益居民都已评价，积分已自动结算。"), "success")
    return redirect(url_for("web_ratings.delivery", delivery_id=delivery_id))


def _visible_rating(rating_id: int) -> Rating:
    try:
        return rating_service.get_visible_rating(current_user, rating_id)
    except NotFound:
        abort(404)


def _back(rating: Rating) -> str:
    target = request.form.get("next", "")
    if target == "inbox":
        return url_for("web_ratings.inbox")
    return url_for("web_ratings.delivery", delivery_id=rating.delivery_id)


@bp.route("/ratings/<int:rating_id>/edit", methods=["POST"])
@login_required
def change(rating_id: int) -> ResponseReturnValue:
    """Change a rating inside the window, until settlement."""
    rating = _visible_rating(rating_id)
    data = {"score": _int_or_raw(request.form.get("score"))}
    if "comment" in request.form:  # (the form has none for a comment the secretary hid)
        data["comment"] = request.form["comment"]
    try:
        loaded = RatingPatchIn().load(data)
        with atomic():
            rating = _visible_rating(rating_id)
            rating_service.change_rating(current_user, rating, **loaded)
    except (ValidationError, DomainError) as exc:
        return _fail(rating.delivery_id, exc)
    flash(_("评价已修改。"), "success")
    return redirect(_back(rating))


@bp.route("/ratings/<int:rating_id>/reply", methods=["POST"])
@login_required
def reply(rating_id: int) -> ResponseReturnValue:
    """Reply once to a rating of a delivery I served in."""
    rating = _visible_rating(rating_id)
    try:
        loaded = ReplyIn().load({"text": request.form.get("text", "")})
        with atomic():
            rating = _visible_rating(rating_id)
            rating_service.reply(current_user, rating, loaded["text"])
    except (ValidationError, DomainError) as exc:
        if request.form.get("next") == "inbox":
            flash(
                joined(
                    form_errors(exc) if isinstance(exc, ValidationError) else domain_errors(exc)
                ),
                "error",
            )
            return redirect(url_for("web_ratings.inbox"))
        return _fail(rating.delivery_id, exc)
    flash(_("回复已发布。"), "success")
    return redirect(_back(rating))


# --- comment moderation (services/moderation.py) ----------------------------------


def _moderate(rating_id: int, schema: Any, act: Any, done: str) -> ResponseReturnValue:
    """Run one moderation step on a rating from a form; errors re-render its page."""
    rating = _visible_rating(rating_id)
    try:
        loaded = schema().load({"reason": request.form.get("reason", "")})
        with atomic():
            act(current_user, _visible_rating(rating_id), loaded.get("reason"))
    except (ValidationError, DomainError) as exc:
        return _fail(rating.delivery_id, exc)
    flash(done, "success")
    if request.form.get("next") == "moderation":
        community_id = delivery_service.get_delivery(rating.delivery_id).community_id
        return redirect(url_for("web_moderation.queue", community_id=community_id))
    return redirect(url_for("web_ratings.delivery", delivery_id=rating.delivery_id))


@bp.route("/ratings/<int:rating_id>/report", methods=["POST"])
@login_required
def report(rating_id: int) -> ResponseReturnValue:
    """Report a rating's comment (a member who served in the delivery), with a reason."""
    return _moderate(
        rating_id, ReasonIn, moderation_service.report_comment, _("已举报，社区书记会处理。")
    )


@bp.route("/ratings/<int:rating_id>/hide", methods=["POST"])
@login_required
def hide(rating_id: int) -> ResponseReturnValue:
    """Hide a rating's comment with a reason (the community's secretary)."""
    return _moderate(rating_id, ReasonIn, moderation_service.hide_comment, _("评语已隐藏。"))


@bp.route("/ratings/<int:rating_id>/unhide", methods=["POST"])
@login_required
def unhide(rating_id: int) -> ResponseReturnValue:
    """Show a hidden comment again (the community's secretary)."""
    return _moderate(
        rating_id, OptionalReasonIn, moderation_service.unhide_comment, _("评语已恢复显示。")
    )


@bp.route("/deliveries/<int:delivery_id>/settle", methods=["POST"])
@login_required
def settle(delivery_id: int) -> ResponseReturnValue:
    """Settle a delivery (its community's secretary), from the queue or its page."""
    confirm = request.form.get("confirm_unrated") in ("1", "on", "true")
    try:
        loaded = SettleIn().load({"confirm_unrated": confirm})
        with atomic():
            d = _visible_delivery(delivery_id)
            s = settlement_service.settle(
                current_user, d, confirm_unrated=loaded["confirm_unrated"]
            )
            total = s.total_points
    except (ValidationError, DomainError) as exc:
        if request.form.get("next") == "queue":
            errors = domain_errors(exc) if isinstance(exc, DomainError) else form_errors(exc)
            flash(joined(errors), "error")
            status = exc.status if isinstance(exc, DomainError) else 422
            return _render_queue(status=status)
        return _fail(delivery_id, exc)
    flash(
        _("已结算服务记录 #%(id)s，共发放 %(points)s 积分。", id=delivery_id, points=total),
        "success",
    )
    if request.form.get("next") == "queue":
        return redirect(url_for("web_ratings.queue"))
    return redirect(url_for("web_ratings.delivery", delivery_id=delivery_id))


# --- the secretary's queue, my ratings --------------------------------------------


def _render_queue(status: int = 200) -> ResponseReturnValue:
    if status != 200:
        db.session.rollback()
    if not permissions.may(current_user, "settlement.queue"):
        abort(403)
    stmt = settlement_service.queue(current_user)
    page = paginate(stmt, page_arg(), PER_PAGE, rows=True)
    page["items"] = [settlement_service.queue_row(row) for row in page["items"]]
    return render_template("ratings/queue.html", page=page), status


@bp.route("/settlement")
@login_required
def queue() -> ResponseReturnValue:
    """Show the deliveries awaiting settlement in my communities (secretary)."""
    return _render_queue()


@bp.route("/ratings")
@login_required
def inbox() -> ResponseReturnValue:
    """Show the ratings I received (with reply) and the deliveries I may rate."""
    if not permissions.may(current_user, "rating.inbox"):
        abort(403)
    received = paginate(rating_service.received_ratings(current_user), page_arg(), PER_PAGE)
    received["items"] = rating_service.present_ratings(
        current_user, received["items"], identities=False
    )
    # ``given_ratings`` is annotated ``Select[tuple[Rating]]``, which SQLAlchemy 2.1 reads
    # as rows of tuples; its scalars are ratings.
    given = cast(
        list[Rating],
        list(db.session.execute(rating_service.given_ratings(current_user).limit(50)).scalars()),
    )
    pending = rating_service.to_rate(current_user)
    delivery_ids = {r["delivery_id"] for r in received["items"]} | {r.delivery_id for r in given}
    titles = rating_service.titles(delivery_ids | {d.id for d in pending})
    return render_template(
        "ratings/inbox.html",
        received=received,
        given=rating_service.present_ratings(current_user, given, identities=False),
        pending=pending,
        titles=titles,
    )
