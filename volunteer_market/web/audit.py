"""Audit log page (审计日志): the entries a secretary (own community), an officer
(subtree) or the admin may read, with the API's filters and paging."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..extensions import db
from ..models import Area, AreaKind
from ..schemas.audit import AuditQuery
from ..services import audit_log, permissions
from ..services.errors import NotFound
from .forms import form_errors
from .paging import paginate

bp = Blueprint("web_audit", __name__)

PER_PAGE = 30
FILTERS = ("area_id", "object_type", "object_id", "actor_id", "since", "until")


def _areas() -> list[Area]:
    """The communities and grids whose entries the reader sees (the area filter)."""
    paths = audit_log.scope_paths(current_user)
    stmt = sa.select(Area).where(Area.kind.in_([AreaKind.COMMUNITY, AreaKind.GRID]))
    if paths is not None:
        stmt = stmt.where(sa.or_(*[Area.path.startswith(p, autoescape=True) for p in paths]))
    return list(db.session.scalars(stmt.order_by(Area.path).limit(500)))


@bp.route("/audit")
@login_required
def audit_page() -> ResponseReturnValue:
    """List audit entries newest first under the filters of the query string."""
    if not permissions.may(current_user, "audit.page"):
        abort(403)
    raw = {k: v.strip() for k, v in request.args.items() if k in (*FILTERS, "page") and v.strip()}
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] = {"items": [], "page": 1, "per_page": PER_PAGE, "total": 0}
    status = 200
    try:
        args = AuditQuery().load({**raw, "per_page": PER_PAGE})
    except ValidationError as exc:
        errors, status = form_errors(exc), 400
    else:
        page = args.pop("page")
        args.pop("per_page")
        try:
            stmt = audit_log.entries(current_user, audit_log.AuditFilters(**args))
        except NotFound:
            abort(404)
        result = paginate(stmt, page, PER_PAGE, rows=True)
        result["items"] = audit_log.present(current_user, result["items"])
    return render_template(
        "audit/audit.html",
        areas=_areas(),
        object_types=audit_log.OBJECT_TYPES,
        values={k: v for k, v in raw.items() if k in FILTERS},
        errors=errors,
        hidden=audit_log.HIDDEN,
        **result,
    ), status
