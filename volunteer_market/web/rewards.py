"""Reward pages: the shop, a reward and redeeming it (members), reward management and
the stock report (secretaries, officers). The redemptions are on the pages of
``web/redemptions.py``."""

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
from ..http.uploads import send_upload, upload_transaction
from ..models import Area, LimitPeriod, RedemptionStatus, Reward
from ..schemas.rewards import RewardIn, RewardPatchIn
from ..services import ledger as ledger_service
from ..services import permissions, wallet_expiry
from ..services import redemptions as redemption_service
from ..services import rewards as reward_service
from ..services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from ..zones import DEFAULT_ZONE
from .forms import form_errors
from .paging import page_arg, paginate
from .redemptions import code_view, refusal_text

bp = Blueprint("web_rewards", __name__)

PER_PAGE = 20
_INT_RE = re.compile(r"^\s*\d{1,9}\s*$")
_FORM_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    return redirect(url_for("web_redemptions.redemption_detail", redemption_id=redemption_id))


@bp.route("/rewards/<int:reward_id>/image")
@login_required
def reward_image(reward_id: int) -> ResponseReturnValue:
    """The picture of a reward I may see."""
    return send_upload(_visible_reward(reward_id).image_path)


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


@bp.route("/rewards/new", methods=["GET", "POST"])
@login_required
def new_reward() -> ResponseReturnValue:
    """Offer a new reward (secretary: own community; officer: own subtree)."""
    if not permissions.may(current_user, "reward.create"):
        abort(403)
    if request.method == "GET":
        return _render_form(None, _form_defaults(None), {})
    try:
        data = RewardIn().load(_form_values(request.form, with_area=True))
        with upload_transaction() as files, atomic():
            reward = reward_service.create_reward(current_user, **data)
            name = files.save(request.files.get("image"), "image")
            if name:
                reward_service.set_image(current_user, reward, name)
    except ValidationError as exc:
        return _render_form(None, request.form, form_errors(exc), 422)
    except DomainError as exc:
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
    try:
        values = _form_values(request.form, with_area=False)
        # Only a stock figure the manager actually changed is applied: the form's
        # figure may be stale (reservations since the page was loaded).
        loaded = (request.form.get("stock_loaded") or "").strip()
        submitted = (request.form.get("stock") or "").strip()
        if submitted == loaded:
            values.pop("stock")
        data = RewardPatchIn().load(values)
        with upload_transaction() as files, atomic():
            reward_service.update_reward(current_user, reward, **data)
            name = files.save(request.files.get("image"), "image")
            if name:
                files.replace(reward.image_path)
                reward_service.set_image(current_user, reward, name)
    except ValidationError as exc:
        return _render_form(reward, request.form, form_errors(exc), 422)
    except DomainError as exc:
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
