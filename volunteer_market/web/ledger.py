"""Points pages: my points, the members' points for secretaries and officers, one
member's ledger with the secretary's adjustment and reversal forms."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
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
from ..services.errors import DomainError, NotFound
from ..services.ledger import REVERSIBLE_KINDS, AdjustTarget
from .forms import domain_errors, form_errors
from .paging import page_arg, paginate

bp = Blueprint("web_ledger", __name__)

PER_PAGE = 20
_INT_RE = re.compile(r"^[+-]?\d{1,9}$")
_FORM_KEY_RE = re.compile(r"^[0-9a-f]{32}$")

#: Chart geometry (inline SVG, drawn server-side; no scripts, no style attributes).
CHART_HEIGHT = 100
CHART_BAR = 24
CHART_GAP = 6


def chart_bars(series: Sequence[tuple[str, float]]) -> dict[str, Any]:
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
def my_points() -> ResponseReturnValue:
    """Show my wallet, held points, service record, a monthly chart and my history."""
    page = ledger_service.history(current_user, page_arg(), PER_PAGE)
    chart = chart_bars(ledger_service.earned_by_month(current_user))
    return render_template(
        "ledger/my_points.html",
        balances=ledger_service.balances(current_user),
        page=page,
        chart=chart,
    )


@bp.route("/ledger/members")
@login_required
def members() -> ResponseReturnValue:
    """List the points of the members I oversee (secretary, officer)."""
    if not permissions.may(current_user, "ledger.members"):
        abort(403)
    page = paginate(ledger_service.member_overview_stmt(current_user), page_arg(), 50, rows=True)
    return render_template(
        "ledger/members.html",
        rows=page["items"],
        page=page["page"],
        per_page=50,
        total=page["total"],
    )


def _member(user_id: int) -> User:
    """Return the member whose ledger I may read (404 otherwise)."""
    return user_service.get_visible_user(current_user, user_id, "ledger.view")


def _render_member(
    user: User, *, errors: dict[str, list[str]] | None = None, form: Any = None, status: int = 200
) -> ResponseReturnValue:
    community = ledger_service.adjustable_community(current_user, user)
    can_adjust = community is not None and permissions.may(
        current_user, "ledger.adjust", AdjustTarget(user, community)
    )
    page = ledger_service.history(user, page_arg(), PER_PAGE)
    reversible = {k.value for k in REVERSIBLE_KINDS}
    communities = {t["community_id"] for t in page["items"] if t["community_id"] is not None}
    can_reverse = {
        cid
        for cid in communities
        if user.id != current_user.id  # never one's own points (no self-dealing)
        and permissions.may(current_user, "ledger.reverse", db.session.get(Area, cid))
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
def member(user_id: int) -> ResponseReturnValue:
    """Show one member's balances and ledger (the member, their secretary, an officer)."""
    return _render_member(_member(user_id))


@bp.route("/ledger/members/<int:user_id>/adjust", methods=["POST"])
@login_required
def adjust(user_id: int) -> ResponseReturnValue:
    """Adjust a member's wallet with a required reason (their community's secretary)."""
    user = _member(user_id)
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
        return _render_member(user, errors=domain_errors(exc), form=request.form, status=exc.status)
    signed = f"{loaded['amount']:+d}"
    flash(_("已调整积分：%(amount)s", amount=signed), "success")
    return redirect(url_for("web_ledger.member", user_id=user.id))


@bp.route("/ledger/transactions/<int:tx_id>/reverse", methods=["POST"])
@login_required
def reverse(tx_id: int) -> ResponseReturnValue:
    """Reverse an earn, adjustment or expiry with a reason (the community's secretary)."""
    try:
        tx = ledger_service.get_transaction(tx_id)
    except NotFound:
        abort(404)
    if tx.member_id is None:
        abort(404)
    user = _member(tx.member_id)
    try:
        loaded = ReverseIn().load({"reason": request.form.get("reason", "")})
        with atomic():
            ledger_service.reverse(current_user, tx, loaded["reason"])
    except ValidationError as exc:
        return _render_member(user, errors=form_errors(exc), status=422)
    except DomainError as exc:
        return _render_member(user, errors=domain_errors(exc), status=exc.status)
    flash(_("已冲正交易 #%(id)s", id=tx.id), "success")
    return redirect(url_for("web_ledger.member", user_id=user.id))
