"""Points pages: my points, the members' points for secretaries and officers, one
member's ledger with the secretary's adjustment and reversal forms."""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..models import Area, User
from ..schemas.ledger import AdjustmentIn, ReverseIn
from ..services import ledger as ledger_service
from ..services import permissions
from ..services import users as user_service
from ..services.errors import DomainError, Forbidden, InsufficientPoints, NotFound
from ..services.ledger import REVERSIBLE_KINDS, AdjustTarget
from . import form_errors

bp = Blueprint("web_ledger", __name__)

PER_PAGE = 20
_INT_RE = re.compile(r"^[+-]?\d{1,9}$")
_FORM_KEY_RE = re.compile(r"^[0-9a-f]{32}$")

#: Chart geometry (inline SVG, drawn server-side; no scripts, no style attributes).
CHART_HEIGHT = 100
CHART_BAR = 24
CHART_GAP = 6


def _page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 100000))
    except ValueError:
        return 1


def chart_bars(series: list[tuple[str, int]]) -> dict[str, Any]:
    """Return bar geometry for an SVG chart of ``[(label "2026-11", value), ...]``."""
    peak = max([v for _l, v in series if v > 0], default=0)
    bars = []
    for i, (label, value) in enumerate(series):
        height = round(CHART_HEIGHT * value / peak) if peak and value > 0 else 0
        if value > 0:
            height = max(height, 2)
        x = CHART_GAP + i * (CHART_BAR + CHART_GAP)
        bars.append(
            {
                "label": label,
                "month": label[5:],
                "value": value,
                "x": x,
                "y": 14 + CHART_HEIGHT - height,
                "height": height,
                "text_x": x + CHART_BAR // 2,
            }
        )
    return {
        "bars": bars,
        "width": CHART_GAP + len(series) * (CHART_BAR + CHART_GAP),
        "height": CHART_HEIGHT + 32,
        "bar_width": CHART_BAR,
        "baseline": 14 + CHART_HEIGHT,
        "peak": peak,
    }


@bp.route("/points")
@login_required
def my_points():  # type: ignore[no-untyped-def]
    """Show my wallet, held points, service record, a monthly chart and my history."""
    page = ledger_service.history(current_user, _page_arg(), PER_PAGE)
    chart = chart_bars(ledger_service.earned_by_month(current_user))
    return render_template(
        "ledger/my_points.html",
        balances=ledger_service.balances(current_user),
        page=page,
        chart=chart,
    )


@bp.route("/ledger/members")
@login_required
def members():  # type: ignore[no-untyped-def]
    """List the points of the members I oversee (secretary, officer)."""
    if not permissions.may(current_user, "ledger.members"):
        abort(403)
    page = _page_arg()
    stmt = ledger_service.member_overview_stmt(current_user)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    rows = db.session.execute(stmt.limit(50).offset((page - 1) * 50)).all()
    return render_template(
        "ledger/members.html", rows=rows, page=page, per_page=50, total=total or 0
    )


def _page_errors(exc: DomainError) -> dict[str, list[str]]:
    """Return a refusal as form errors in the page language."""
    if exc.errors:
        return exc.errors
    if isinstance(exc, InsufficientPoints):
        message = _("可用积分不足。")
    elif isinstance(exc, Forbidden):
        message = _("您没有权限进行此操作。")
    else:
        message = _("操作与当前状态冲突，请刷新后重试。")
    return {"_schema": [message]}


def _member_or_404(user_id: int) -> User:
    try:
        user = user_service.get_user(user_id)
    except NotFound:
        abort(404)
    if not permissions.may(current_user, "ledger.view", user):
        abort(404)
    return user


def _render_member(
    user: User, *, errors: dict[str, list[str]] | None = None, form: Any = None, status: int = 200
):  # type: ignore[no-untyped-def]
    community = ledger_service.adjustable_community(current_user, user)
    can_adjust = community is not None and permissions.may(
        current_user, "ledger.adjust", AdjustTarget(user, community)
    )
    page = ledger_service.history(user, _page_arg(), PER_PAGE)
    reversible = {k.value for k in REVERSIBLE_KINDS}
    communities = {t["community_id"] for t in page["items"] if t["community_id"] is not None}
    can_reverse = {
        cid
        for cid in communities
        if permissions.may(current_user, "ledger.reverse", db.session.get(Area, cid))
    }
    return (
        render_template(
            "ledger/member.html",
            person=user,
            balances=ledger_service.balances(user),
            page=page,
            chart=chart_bars(ledger_service.earned_by_month(user)),
            community=community,
            can_adjust=can_adjust,
            can_reverse=can_reverse,
            reversible=reversible,
            errors=errors or {},
            form=form or {},
            form_key=uuid.uuid4().hex,
        ),
        status,
    )


@bp.route("/ledger/members/<int:user_id>")
@login_required
def member(user_id: int):  # type: ignore[no-untyped-def]
    """Show one member's balances and ledger (the member, their secretary, an officer)."""
    return _render_member(_member_or_404(user_id))


@bp.route("/ledger/members/<int:user_id>/adjust", methods=["POST"])
@login_required
def adjust(user_id: int):  # type: ignore[no-untyped-def]
    """Adjust a member's wallet with a required reason (their community's secretary)."""
    user = _member_or_404(user_id)
    raw_amount = (request.form.get("amount") or "").strip()
    data = {
        "user_id": user.id,
        "amount": int(raw_amount) if _INT_RE.match(raw_amount) else raw_amount,
        "reason": request.form.get("reason", ""),
    }
    form_key = request.form.get("form_key", "")
    key = f"adjust:form:u{current_user.id}:{form_key}" if _FORM_KEY_RE.match(form_key) else None
    try:
        loaded = AdjustmentIn().load(data)
        with atomic():
            ledger_service.adjust(
                current_user, user, loaded["amount"], loaded["reason"], idempotency_key=key
            )
    except ValidationError as exc:
        return _render_member(user, errors=form_errors(exc), form=request.form, status=422)
    except DomainError as exc:
        return _render_member(user, errors=_page_errors(exc), form=request.form, status=exc.status)
    signed = f"{loaded['amount']:+d}"
    flash(_("已调整积分：%(amount)s", amount=signed), "success")
    return redirect(url_for("web_ledger.member", user_id=user.id))


@bp.route("/ledger/transactions/<int:tx_id>/reverse", methods=["POST"])
@login_required
def reverse(tx_id: int):  # type: ignore[no-untyped-def]
    """Reverse an earn, adjustment or expiry with a reason (the community's secretary)."""
    try:
        tx = ledger_service.get_transaction(tx_id)
    except NotFound:
        abort(404)
    if tx.member_id is None:
        abort(404)
    user = _member_or_404(tx.member_id)
    try:
        loaded = ReverseIn().load({"reason": request.form.get("reason", "")})
        with atomic():
            ledger_service.reverse(current_user, tx, loaded["reason"])
    except ValidationError as exc:
        return _render_member(user, errors=form_errors(exc), status=422)
    except DomainError as exc:
        return _render_member(user, errors=_page_errors(exc), status=exc.status)
    flash(_("已冲正交易 #%(id)s", id=tx.id), "success")
    return redirect(url_for("web_ledger.member", user_id=user.id))
