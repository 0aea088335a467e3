"""Community dashboard page (社区看板): server-rendered SVG charts (no script) with the
same numbers as tables, for the community's secretary and the officers over it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from ..extensions import db
from ..models import Area, AreaKind
from ..services import dashboards, permissions
from ..services.errors import Forbidden, NotFound, ValidationFailed
from .forms import domain_errors
from .ledger import chart_bars

bp = Blueprint("web_dashboards", __name__)

#: Geometry of the needs-by-grid chart (one row of two bars per grid).
ROW, BAR, LABEL, WIDTH = 34, 12, 90, 320


def needs_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return bar geometry for the needs-by-grid SVG: open and served per grid."""
    peak = max([max(r["open"], r["served"]) for r in rows], default=0)
    span = WIDTH - LABEL - 30
    bars = []
    for i, r in enumerate(rows):
        y = 6 + i * ROW
        bars.append(
            {
                **r,
                "y": y,
                "open_w": round(span * r["open"] / peak) if peak else 0,
                "served_w": round(span * r["served"] / peak) if peak else 0,
            }
        )
    return {
        "bars": bars,
        "width": WIDTH,
        "height": 12 + len(rows) * ROW,
        "label": LABEL,
        "bar": BAR,
    }


def _communities() -> list[Area]:
    return [
        a
        for a in db.session.scalars(
            sa.select(Area).where(Area.kind == AreaKind.COMMUNITY).order_by(Area.path)
        )
        if permissions.may(current_user, "dashboard.view", a)
    ]


@bp.route("/dashboard")
@login_required
def choose() -> ResponseReturnValue:
    """Open the dashboard of my community (or pick one of those I oversee)."""
    if not permissions.may(current_user, "dashboard.view"):
        abort(403)
    communities = _communities()
    if len(communities) == 1:
        return redirect(url_for("web_dashboards.dashboard", community_id=communities[0].id))
    return render_template("dashboards/choose.html", communities=communities)


@bp.route("/communities/<int:community_id>/dashboard")
@login_required
def dashboard(community_id: int) -> ResponseReturnValue:
    """Show the community's figures over ``?period=`` (a year, quarter or month)."""
    community = db.session.get(Area, community_id)
    if community is None:
        abort(404)
    period = request.args.get("period", "").strip() or None
    try:
        data = dashboards.dashboard(current_user, community, period)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    except ValidationFailed as exc:
        return render_template(
            "dashboards/dashboard.html",
            community=community,
            data=None,
            errors=domain_errors(exc),
            period=period,
        ), 400
    points = chart_bars([(r["month"], r["points"]) for r in data["points_by_month"]])
    hours = chart_bars([(r["month"], r["hours"]) for r in data["hours_by_month"]])
    return render_template(
        "dashboards/dashboard.html",
        community=community,
        data=data,
        errors={},
        period=data["period"],
        points_chart=points,
        hours_chart=hours,
        needs=needs_chart(data["needs_by_grid"]),
    )
