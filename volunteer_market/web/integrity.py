"""Integrity signals page (诚信提示): a community's patterns to look at, each linking to
its deliveries (the community's secretary, officers over it)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from ..extensions import db
from ..models import Area, AreaKind, User
from ..services import integrity as integrity_service
from ..services import permissions
from .forms import digits

bp = Blueprint("web_integrity", __name__)


@bp.route("/integrity")
@login_required
def signals_page() -> ResponseReturnValue:
    """Pick a community I oversee (``?community_id=``) and show its signals."""
    if not permissions.may(current_user, "integrity.view"):
        abort(403)
    communities = [
        a
        for a in db.session.scalars(
            sa.select(Area).where(Area.kind == AreaKind.COMMUNITY).order_by(Area.path)
        )
        if permissions.may(current_user, "integrity.view", a)
    ]
    raw = request.args.get("community_id", "")
    chosen = None
    if raw:
        cid = digits(raw)
        chosen = next((a for a in communities if cid is not None and a.id == cid), None)
        if chosen is None:
            abort(404)
    elif communities:
        chosen = communities[0]
    found = integrity_service.report(current_user, chosen) if chosen is not None else None
    items = found.items if found is not None else []
    shown: dict[str, int] = {}
    for s in items:
        shown[s.kind] = shown.get(s.kind, 0) + 1
    capped = {
        kind: (shown.get(kind, 0), total)
        for kind, total in (found.totals.items() if found is not None else [])
        if total > shown.get(kind, 0)
    }
    ids = sorted({uid for s in items for uid in s.user_ids})
    rows = db.session.execute(
        sa.select(User.id, User.display_name).where(User.id.in_(ids or [0]))
    ).all()
    names: dict[int, str] = {row[0]: row[1] for row in rows}
    return render_template(
        "integrity/signals.html",
        communities=communities,
        chosen=chosen,
        items=items,
        names=names,
        capped=capped,
    )
