"""Leaderboard pages: member ranking with scope and period pickers, my position and
my monthly chart; team and community tables for secretaries and officers; the
exposure setting form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..models import Area
from ..schemas.rankings import ExposureIn
from ..services import permissions
from ..services import rankings as ranking_service
from ..services.errors import DomainError, NotFound
from .forms import domain_errors, form_data, form_errors, int_arg
from .ledger import chart_bars
from .paging import page_arg

bp = Blueprint("web_rankings", __name__)

PER_PAGE = 20


def _area_arg(default: Area | None) -> Area:
    area_id = int_arg("area_id")
    if area_id is None:
        if default is None:
            abort(404)
        return default
    try:
        return ranking_service.get_area(area_id)
    except NotFound:
        abort(404)


def _period_arg() -> str:
    try:
        return ranking_service.parse_period(request.args.get("period") or "all")
    except DomainError:
        abort(400)


def _period_choices(area: Area) -> list[str]:
    """all, this and last year, this quarter, the last 12 months (newest first)."""
    keys = ranking_service.current_periods(area.timezone)
    year = int(keys[1])
    months = list(reversed(ranking_service.recent_months(12, area.timezone)))
    return ["all", keys[1], str(year - 1), keys[2], *months]


def _common(area: Area, period: str) -> dict[str, Any]:
    scopes = ranking_service.scope_choices(current_user)
    if area.id not in {a.id for a in scopes}:
        scopes.append(area)
    periods = _period_choices(area)
    if period not in periods:
        periods.append(period)
    return {"area": area, "period": period, "scopes": scopes, "periods": periods}


@bp.route("/rankings")
@login_required
def leaderboard() -> ResponseReturnValue:
    """Show the member ranking of an area and period, my position and my chart."""
    area = _area_arg(ranking_service.default_area(current_user))
    period = _period_arg()
    page = page_arg()
    board = ranking_service.ranking(area, period, page, PER_PAGE, viewer=current_user)
    chart = chart_bars(ranking_service.monthly_points(current_user, tz=area.timezone))
    setting = ranking_service.exposure_for(area)
    return render_template(
        "rankings/leaderboard.html",
        board=board,
        chart=chart,
        setting=setting,
        **_common(area, period),
    )


@bp.route("/rankings/teams")
@login_required
def teams() -> ResponseReturnValue:
    """Show the team (project) ranking (officers; secretaries for their community)."""
    area = _area_arg(ranking_service.default_area(current_user))
    period = _period_arg()
    if not permissions.may(current_user, "rankings.teams", area):
        abort(403)
    page = page_arg()
    table = ranking_service.team_ranking(current_user, area, period, page, PER_PAGE)
    return render_template("rankings/teams.html", table=table, **_common(area, period))


@bp.route("/rankings/communities")
@login_required
def communities() -> ResponseReturnValue:
    """Show per-community points, hours and participation (officers, secretaries)."""
    area = _area_arg(ranking_service.default_area(current_user))
    period = _period_arg()
    if not permissions.may(current_user, "rankings.communities", area):
        abort(403)
    page = page_arg()
    try:
        table = ranking_service.community_table(current_user, area, period, page, 100)
    except DomainError:
        abort(404)
    return render_template("rankings/communities.html", table=table, **_common(area, period))


#: Labels of the exposure form's fields in flashed errors.
_SETTING_LABELS = {
    "exposure": _l("展示方式"),
    "top_n": _l("前 N 名"),
    "gold_pct": _l("金牌比例"),
    "silver_pct": _l("银牌比例"),
    "bronze_pct": _l("铜牌比例"),
    "tiers": _l("档位比例"),
}


def _flash_errors(errors: dict[str, list[str]]) -> None:
    """Flash translated field errors of the exposure form (one line per field)."""
    for field, messages in errors.items():
        label = _SETTING_LABELS.get(field)
        text = _("；").join(messages)
        flash(_("%(field)s：%(message)s", field=label, message=text) if label else text, "error")


@bp.route("/rankings/settings/<int:area_id>", methods=["POST"])
@login_required
def settings(area_id: int) -> ResponseReturnValue:
    """Save how this area's rankings are shown to residents and members."""
    try:
        area = ranking_service.get_area(area_id)
    except NotFound:
        abort(404)
    if not permissions.may(current_user, "rankings.configure", area):
        abort(403)
    back = (
        url_for("web_settings.settings_page", community_id=area.id)
        if request.form.get("back") == "settings"
        else url_for("web_rankings.leaderboard", area_id=area.id)
    )
    raw = form_data(request.form, ["exposure", "top_n", "gold_pct", "silver_pct", "bronze_pct"])
    raw = {k: v for k, v in raw.items() if v is not None}
    if raw.get("exposure") != "top_n":
        raw.pop("top_n", None)
    try:
        data = ExposureIn().load(raw)
        with atomic():
            ranking_service.set_exposure(
                current_user,
                area,
                data["exposure"],
                top_n=data["top_n"],
                gold_pct=data["gold_pct"],
                silver_pct=data["silver_pct"],
                bronze_pct=data["bronze_pct"],
            )
    except ValidationError as exc:
        _flash_errors(form_errors(exc))
    except DomainError as exc:
        _flash_errors(domain_errors(exc))
    else:
        flash(_("排行榜展示方式已保存。"), "success")
    return redirect(back)
