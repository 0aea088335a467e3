"""Redemption pages: my redemptions with their pickup codes (members), the redemption
history, one redemption with cancel and reject, and the phone fulfilment page
(secretaries: type the pickup code, or scan the member's QR code, which opens this page
with the code filled in)."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..database import atomic
from ..http.links import pickup_url
from ..models import Redemption, RedemptionStatus
from ..services import permissions
from ..services import redemptions as redemption_service
from ..services.errors import (
    DomainError,
    Forbidden,
    NotFound,
    TooManyAttempts,
    ValidationFailed,
)
from ..services.redemptions import LimitReached
from .forms import form_id
from .messages import message_text
from .paging import page_arg, paginate

bp = Blueprint("web_redemptions", __name__)

PER_PAGE = 20
_INT_RE = re.compile(r"^\s*\d{1,9}\s*$")


def refusal_text(exc: DomainError) -> str:
    """Return the page-language message of a refusal of a reward or redemption page."""
    if isinstance(exc, LimitReached):
        return _("已达到每人兑换上限。")
    if isinstance(exc, ValidationFailed) and exc.errors and "pickup_code" in exc.errors:
        return _("取货码不正确。")
    return message_text(exc.detail)


def _visible_redemption(redemption_id: int) -> Redemption:
    try:
        return redemption_service.get_visible_redemption(current_user, redemption_id)
    except NotFound:
        abort(404)


def code_view(redemption: Redemption) -> dict[str, str] | None:
    """Return ``{code, qr}`` for the member's own held redemption, else None."""
    if redemption.member_id != current_user.id or redemption.status != RedemptionStatus.HELD:
        return None
    code = redemption_service.pickup_code(redemption)
    return {"code": code, "qr": redemption_service.qr_svg_data_uri(pickup_url(code))}


# --- redemptions ----------------------------------------------------------------------------


@bp.route("/redemptions/mine")
@login_required
def my_redemptions() -> ResponseReturnValue:
    """My redemptions, newest first, with pickup codes and QR codes of the held ones."""
    page = paginate(
        redemption_service.redemptions_stmt(current_user, mine=True), page_arg(), PER_PAGE
    )
    return render_template(
        "rewards/my_redemptions.html",
        page=page,
        codes={r.id: code_view(r) for r in page["items"]},
    )


@bp.route("/redemptions")
@login_required
def history() -> ResponseReturnValue:
    """Redemption history I may see (own; a secretary's community; an officer's subtree)."""
    raw = request.args.get("status") or None
    try:
        status = RedemptionStatus(raw) if raw else None
    except ValueError:
        status = None
    reward_id = request.args.get("reward_id", "")
    reward_filter = int(reward_id) if _INT_RE.match(reward_id) else None
    stmt = redemption_service.redemptions_stmt(current_user, status=status, reward_id=reward_filter)
    return render_template(
        "rewards/history.html",
        page=paginate(stmt, page_arg(), PER_PAGE),
        status=status.value if status else "",
        statuses=[s.value for s in RedemptionStatus],
        reward_id=reward_filter,
    )


@bp.route("/redemptions/<int:redemption_id>")
@login_required
def redemption_detail(redemption_id: int) -> ResponseReturnValue:
    """One redemption: the member sees the pickup code and QR code; the secretary the
    reject form and a link to the fulfilment page."""
    return _render_redemption(_visible_redemption(redemption_id))


def _render_redemption(
    redemption: Redemption, *, errors: dict[str, list[str]] | None = None, status: int = 200
) -> ResponseReturnValue:
    held = redemption.status == RedemptionStatus.HELD
    resp = render_template(
        "rewards/redemption.html",
        r=redemption,
        code=code_view(redemption),
        can_cancel=held and permissions.may(current_user, "redemption.cancel", redemption),
        can_handle=held and permissions.may(current_user, "redemption.handle", redemption),
        errors=errors or {},
    )
    return resp, status, {"Cache-Control": "no-store"}


@bp.route("/redemptions/<int:redemption_id>/cancel", methods=["POST"])
@login_required
def cancel(redemption_id: int) -> ResponseReturnValue:
    """Cancel a held redemption (its member, the community's secretary)."""
    redemption = _visible_redemption(redemption_id)
    try:
        with atomic():
            redemption_service.cancel(current_user, redemption, request.form.get("reason"))
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        return _render_redemption(
            redemption, errors={"_schema": [refusal_text(exc)]}, status=exc.status
        )
    flash(_("已取消兑换，积分已退回。"), "success")
    return redirect(url_for("web_redemptions.redemption_detail", redemption_id=redemption.id))


@bp.route("/redemptions/<int:redemption_id>/reject", methods=["POST"])
@login_required
def reject(redemption_id: int) -> ResponseReturnValue:
    """Reject a held redemption with a reason (the community's secretary)."""
    redemption = _visible_redemption(redemption_id)
    try:
        with atomic():
            redemption_service.reject(current_user, redemption, request.form.get("reason"))
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        errors = (
            {"reason": [_("请填写拒绝原因（最多 500 字）。")]}
            if isinstance(exc, ValidationFailed)
            else {"_schema": [refusal_text(exc)]}
        )
        return _render_redemption(redemption, errors=errors, status=exc.status)
    flash(_("已拒绝兑换，积分已退回。"), "success")
    return redirect(url_for("web_redemptions.redemption_detail", redemption_id=redemption.id))


# --- fulfilment (secretaries, on a phone) ----------------------------------------------------


@bp.route("/rewards/fulfil", methods=["GET", "POST"])
@login_required
def fulfil_page() -> ResponseReturnValue:
    """Enter (or scan) a pickup code, check the redemption, confirm the hand-over."""
    if not permissions.may(current_user, "redemption.fulfil_page"):
        abort(403)
    errors: dict[str, list[str]] = {}
    status = 200
    retry_after: int | None = None
    if request.method == "POST":
        code = request.form.get("code", "")
        redemption_id = form_id(request.form.get("redemption_id", "").strip())
        try:
            redemption = redemption_service.get_visible_redemption(current_user, redemption_id)
        except NotFound:
            abort(404)
        try:
            with atomic():
                redemption_service.fulfil(current_user, redemption, code)
        except (Forbidden, NotFound):
            raise
        except DomainError as exc:
            errors = {"code": [refusal_text(exc)]}
            status = exc.status
            retry_after = getattr(exc, "retry_after", None)  # locked out (429)
        else:
            flash(
                _(
                    "已核销：%(name)s × %(n)s（%(member)s）",
                    name=redemption.reward.name,
                    n=redemption.quantity,
                    member=redemption.member.display_name,
                ),
                "success",
            )
            return redirect(url_for("web_redemptions.fulfil_page"))
    else:
        code = request.args.get("code", "")
    found = None
    if code and not errors:
        try:
            with atomic():  # a code that finds nothing counts as a wrong code (lock-out)
                found = redemption_service.look_up(current_user, code)
        except TooManyAttempts as exc:
            errors, status, retry_after = {"code": [refusal_text(exc)]}, 429, exc.retry_after
        else:
            if found is None:
                errors = {"code": [_("没有找到可由您核销的待领取兑换单，请核对取货码。")]}
                status = 404 if redemption_service.normalise_code(code) else 422
    elif code and request.method == "POST":
        found = redemption_service.find_held_by_code(current_user, code)
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return (
        render_template("rewards/fulfil.html", code=code, found=found, errors=errors),
        status,
        headers,
    )
