"""Reward pages: the shop and my redemptions (members), reward management, the stock
report and redemption history (secretaries, officers), and the phone fulfilment page
(secretaries: type the pickup code, or scan the member's QR code, which opens this
page with the code filled in)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..http.uploads import save_upload, send_upload, upload_dir
from ..models import Area, LimitPeriod, Redemption, RedemptionStatus, Reward
from ..schemas.rewards import RewardIn, RewardPatchIn
from ..services import ledger as ledger_service
from ..services import permissions, uploads, wallet_expiry
from ..services import redemptions as redemption_service
from ..services import rewards as reward_service
from ..services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from ..services.redemptions import LimitReached
from ..zones import DEFAULT_ZONE
from .forms import form_errors
from .messages import message_text
from .paging import page_arg, paginate

bp = Blueprint("web_rewards", __name__)

PER_PAGE = 20
_INT_RE = re.compile(r"^\s*\d{1,9}\s*$")
_FORM_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def refusal_text(exc: DomainError) -> str:
    """Return the page-language message of a refusal shown on a page."""
    if isinstance(exc, LimitReached):
        return _("已达到每人兑换上限。")
    if isinstance(exc, ValidationFailed) and exc.errors and "pickup_code" in exc.errors:
        return _("取货码不正确。")
    return message_text(exc.detail)


def _visible_reward(reward_id: int) -> Reward:
    try:
        return reward_service.get_visible_reward(current_user, reward_id)
    except NotFound:
        abort(404)


def _managed_reward(reward_id: int) -> Reward:
    reward = _visible_reward(reward_id)
    if not permissions.may(current_user, "reward.manage", reward):
        abort(403)
    return reward


def _visible_redemption(redemption_id: int) -> Redemption:
    try:
        return redemption_service.get_visible_redemption(current_user, redemption_id)
    except NotFound:
        abort(404)


def pickup_url(code: str) -> str:
    return url_for("web_rewards.fulfil_page", code=code, _external=True)


def code_view(redemption: Redemption) -> dict[str, str] | None:
    """Return ``{code, qr}`` for the member's own held redemption, else None."""
    if redemption.member_id != current_user.id or redemption.status != RedemptionStatus.HELD:
        return None
    code = redemption_service.pickup_code(redemption)
    return {"code": code, "qr": redemption_service.qr_svg_data_uri(pickup_url(code))}


# --- the shop (members) ------------------------------------------------------------------


@bp.route("/rewards")
@login_required
def shop() -> ResponseReturnValue:
    """Show the rewards open to me, what I can afford and what is left, and my holds."""
    if not permissions.may(current_user, "reward.shop"):
        abort(403)
    balances = ledger_service.balances(current_user)
    page = paginate(reward_service.open_rewards_stmt(current_user), page_arg(), PER_PAGE)
    allowance = {
        r.id: redemption_service.remaining_allowance(current_user, r) for r in page["items"]
    }
    held = list(
        db.session.scalars(
            redemption_service.redemptions_stmt(
                current_user, mine=True, status=RedemptionStatus.HELD
            ).limit(20)
        )
    )
    return render_template(
        "rewards/shop.html",
        balances=balances,
        expiring=wallet_expiry.expiring_soon(current_user),
        page=page,
        allowance=allowance,
        held=held,
        codes={r.id: code_view(r) for r in held},
    )


@bp.route("/rewards/<int:reward_id>")
@login_required
def reward_detail(reward_id: int) -> ResponseReturnValue:
    """Show one reward with the redeem form (members in its scope)."""
    return _render_reward(_visible_reward(reward_id))


def _render_reward(
    reward: Reward, *, errors: dict[str, list[str]] | None = None, status: int = 200
) -> ResponseReturnValue:
    can_redeem = permissions.may(current_user, "reward.redeem", reward)
    return (
        render_template(
            "rewards/reward.html",
            reward=reward,
            closed=reward_service.closed_reason(reward),
            can_redeem=can_redeem,
            can_manage=permissions.may(current_user, "reward.manage", reward),
            balances=ledger_service.balances(current_user),
            allowance=redemption_service.remaining_allowance(current_user, reward)
            if can_redeem
            else None,
            errors=errors or {},
            form_key=uuid.uuid4().hex,
        ),
        status,
    )


@bp.route("/rewards/<int:reward_id>/redeem", methods=["POST"])
@login_required
def redeem(reward_id: int) -> ResponseReturnValue:
    """Redeem: hold the points, reserve the stock, issue the pickup code."""
    reward = _visible_reward(reward_id)
    raw = request.form.get("quantity", "")
    quantity: Any = int(raw) if _INT_RE.match(raw) else raw
    form_key = request.form.get("form_key", "")
    key = f"form:{form_key}" if _FORM_KEY_RE.match(form_key) else None
    try:
        with atomic():
            issued = redemption_service.request(current_user, reward, quantity, idempotency_key=key)
            redemption_id = issued.redemption.id
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        errors = exc.errors if isinstance(exc, ValidationFailed) and exc.errors else None
        if errors and "quantity" in errors:
            errors = {
                "quantity": [_("请输入 1 到 %(n)s 之间的整数。", n=redemption_service.MAX_QUANTITY)]
            }
        return _render_reward(
            reward, errors=errors or {"_schema": [refusal_text(exc)]}, status=exc.status
        )
    flash(_("兑换成功，请凭取货码到社区领取。"), "success")
    return redirect(url_for("web_rewards.redemption_detail", redemption_id=redemption_id))


@bp.route("/rewards/<int:reward_id>/image")
@login_required
def reward_image(reward_id: int) -> ResponseReturnValue:
    """The picture of a reward I may see."""
    return send_upload(_visible_reward(reward_id).image_path)


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
    return redirect(url_for("web_rewards.redemption_detail", redemption_id=redemption.id))


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
    return redirect(url_for("web_rewards.redemption_detail", redemption_id=redemption.id))


# --- fulfilment (secretaries, on a phone) ----------------------------------------------------


@bp.route("/rewards/fulfil", methods=["GET", "POST"])
@login_required
def fulfil_page() -> ResponseReturnValue:
    """Enter (or scan) a pickup code, check the redemption, confirm the hand-over."""
    if not permissions.may(current_user, "redemption.fulfil_page"):
        abort(403)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        code = request.form.get("code", "")
        try:
            redemption_id = int(request.form.get("redemption_id", ""))
        except ValueError:
            redemption_id = 0
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
            return redirect(url_for("web_rewards.fulfil_page"))
    else:
        code = request.args.get("code", "")
    found = None
    if code and not errors:
        found = redemption_service.find_held_by_code(current_user, code)
        if found is None:
            errors = {"code": [_("没有找到可由您核销的待领取兑换单，请核对取货码。")]}
            status = 404 if redemption_service.normalise_code(code) else 422
    elif code and request.method == "POST":
        found = redemption_service.find_held_by_code(current_user, code)
    return (
        render_template("rewards/fulfil.html", code=code, found=found, errors=errors),
        status,
        {"Cache-Control": "no-store"},
    )


# --- management (secretaries, officers) ------------------------------------------------------


def manageable_areas() -> list[Area]:
    """Return the areas on which I may offer rewards, in tree order."""
    cond = reward_service.managed_area_condition(current_user)
    if cond is None:
        return []
    areas = list(db.session.scalars(sa.select(Area).where(cond).order_by(Area.path)))
    return [a for a in areas if permissions.manages_reward_area(current_user, a)]


@bp.route("/rewards/manage")
@login_required
def manage() -> ResponseReturnValue:
    """The rewards I manage (including paused and retired ones)."""
    if not permissions.may(current_user, "reward.manage_any"):
        abort(403)
    page = paginate(reward_service.managed_rewards_stmt(current_user), page_arg(), PER_PAGE)
    return render_template("rewards/manage.html", page=page)


@bp.route("/rewards/stock")
@login_required
def stock_report() -> ResponseReturnValue:
    """Stock left, held, handed over and returned, per reward I manage."""
    if not permissions.may(current_user, "reward.manage_any"):
        abort(403)
    return render_template("rewards/stock.html", rows=reward_service.stock_report(current_user))


@bp.route("/rewards/<int:reward_id>/stock")
@login_required
def stock_changes(reward_id: int) -> ResponseReturnValue:
    """Every movement of one reward's stock, newest first."""
    reward = _managed_reward(reward_id)
    page = paginate(reward_service.stock_changes_stmt(reward), page_arg(), 50)
    return render_template("rewards/stock_changes.html", reward=reward, page=page)


def _local_day(value: str | None, *, end: bool = False) -> Any:
    """Return an ISO datetime for a form date (start of the day, or of the next day
    for an inclusive end date, China time); other text is passed on to fail validation."""
    if not value:
        return None
    if not _DATE_RE.match(value):
        return value
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    if end:
        day = day + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=DEFAULT_ZONE).isoformat()


def _form_values(form: Any, *, with_area: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in ("name", "description", "sponsor"):
        data[name] = form.get(name, "")
    data["sponsor"] = data["sponsor"] or None
    for name in ("cost", "stock", "per_member_limit"):
        raw = (form.get(name) or "").strip()
        if raw == "" and name != "cost":
            data[name] = None
        else:
            data[name] = int(raw) if _INT_RE.match(raw) else raw
    data["limit_period"] = form.get("limit_period") or LimitPeriod.ALL.value
    data["active_from"] = _local_day(form.get("active_from"))
    data["active_to"] = _local_day(form.get("active_to"), end=True)
    data["is_active"] = form.get("is_active") == "1"
    if with_area:
        raw = (form.get("area_id") or "").strip()
        data["area_id"] = int(raw) if _INT_RE.match(raw) else raw
    return data


def _form_defaults(reward: Reward | None) -> dict[str, Any]:
    if reward is None:
        return {"limit_period": "all", "is_active": "1"}

    def day(value: datetime | None, end: bool = False) -> str:
        if value is None:
            return ""
        local = value.astimezone(DEFAULT_ZONE)
        if end:
            local = local - timedelta(days=1)
        return local.date().isoformat()

    return {
        "name": reward.name,
        "description": reward.description,
        "sponsor": reward.sponsor or "",
        "cost": reward.cost,
        "stock": "" if reward.stock is None else reward.stock,
        "stock_loaded": "" if reward.stock is None else reward.stock,
        "per_member_limit": reward.per_member_limit or "",
        "limit_period": reward.limit_period.value,
        "active_from": day(reward.active_from),
        "active_to": day(reward.active_to, end=True),
        "is_active": "1" if reward.is_active else "",
    }


def _render_form(
    reward: Reward | None, form: Any, errors: dict[str, list[str]], status: int = 200
) -> ResponseReturnValue:
    return (
        render_template(
            "rewards/form.html",
            reward=reward,
            form=form,
            errors=errors,
            areas=manageable_areas() if reward is None else [],
            periods=[p.value for p in LimitPeriod],
        ),
        status,
    )


def _store_image(field: str = "image") -> str | None:
    return save_upload(request.files.get(field), field)


@bp.route("/rewards/new", methods=["GET", "POST"])
@login_required
def new_reward() -> ResponseReturnValue:
    """Offer a new reward (secretary: own community; officer: own subtree)."""
    if not permissions.may(current_user, "reward.create"):
        abort(403)
    if request.method == "GET":
        return _render_form(None, _form_defaults(None), {})
    name = None
    try:
        data = RewardIn().load(_form_values(request.form, with_area=True))
        name = _store_image()
        with atomic():
            reward = reward_service.create_reward(current_user, **data)
            if name:
                reward_service.set_image(current_user, reward, name)
    except ValidationError as exc:
        uploads.remove(upload_dir(), name)
        return _render_form(None, request.form, form_errors(exc), 422)
    except DomainError as exc:
        uploads.remove(upload_dir(), name)
        errors = form_errors(exc.errors) if exc.errors else {"_schema": [refusal_text(exc)]}
        return _render_form(None, request.form, errors, exc.status)
    flash(_("已发布奖品：%(name)s", name=reward.name), "success")
    return redirect(url_for("web_rewards.reward_detail", reward_id=reward.id))


@bp.route("/rewards/<int:reward_id>/edit", methods=["GET", "POST"])
@login_required
def edit_reward(reward_id: int) -> ResponseReturnValue:
    """Edit a reward I manage; a changed stock figure is an audited stock change."""
    reward = _managed_reward(reward_id)
    if request.method == "GET":
        return _render_form(reward, _form_defaults(reward), {})
    name = None
    try:
        values = _form_values(request.form, with_area=False)
        # Only a stock figure the manager actually changed is applied: the form's
        # figure may be stale (reservations since the page was loaded).
        loaded = (request.form.get("stock_loaded") or "").strip()
        submitted = (request.form.get("stock") or "").strip()
        if submitted == loaded:
            values.pop("stock")
        data = RewardPatchIn().load(values)
        name = _store_image()
        with atomic():
            reward_service.update_reward(current_user, reward, **data)
            if name:
                reward_service.set_image(current_user, reward, name)
    except ValidationError as exc:
        uploads.remove(upload_dir(), name)
        return _render_form(reward, request.form, form_errors(exc), 422)
    except DomainError as exc:
        uploads.remove(upload_dir(), name)
        if isinstance(exc, Forbidden | NotFound):
            raise
        errors = form_errors(exc.errors) if exc.errors else {"_schema": [refusal_text(exc)]}
        return _render_form(reward, request.form, errors, exc.status)
    flash(_("已保存。"), "success")
    return redirect(url_for("web_rewards.reward_detail", reward_id=reward.id))


@bp.route("/rewards/<int:reward_id>/retire", methods=["POST"])
@login_required
def retire(reward_id: int) -> ResponseReturnValue:
    """Retire a reward I manage (held redemptions stay valid)."""
    reward = _managed_reward(reward_id)
    try:
        with atomic():
            reward_service.retire_reward(current_user, reward)
    except Conflict as exc:
        flash(refusal_text(exc), "error")
    else:
        flash(_("已下架：%(name)s", name=reward.name), "success")
    return redirect(url_for("web_rewards.reward_detail", reward_id=reward.id))
