"""Annual report page (年度考核表): area and year pickers, the table, CSV/XLSX downloads."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from ..database import atomic
from ..http.certificates import certificate_pdf, verify_link
from ..http.exports import download
from ..models import Area, AreaKind, utcnow
from ..services import evaluations, permissions
from ..services import rankings as ranking_service
from ..services.errors import DomainError, NotFound
from ..zones import zone
from .forms import int_arg
from .paging import page_arg

bp = Blueprint("web_evaluations", __name__)

PER_PAGE = 50
YEARS_BACK = 5


def _report_scopes() -> list[Area]:
    """Areas (not grids) whose report the current user may read."""
    return [
        a
        for a in ranking_service.scope_choices(current_user)
        if a.kind != AreaKind.GRID and permissions.may(current_user, "reports.annual", a)
    ]


def _this_year(area: Area | None) -> int:
    return utcnow().astimezone(zone(area.timezone if area else None)).year


@bp.route("/reports/annual")
@login_required
def annual() -> ResponseReturnValue:
    """Show the annual report of an area and year; ``format=csv|xlsx`` downloads it."""
    if not permissions.may(current_user, "reports.annual_page"):
        abort(403)
    scopes = _report_scopes()
    area_id = int_arg("area_id")
    if area_id is None:
        if not scopes:
            abort(404)
        area = scopes[0]
    else:
        try:
            area = evaluations.get_area(area_id)
        except NotFound:
            abort(404)
    if area.kind == AreaKind.GRID:
        abort(404)
    if not permissions.may(current_user, "reports.annual", area):
        abort(403)
    this_year = _this_year(area)
    years = list(range(this_year, this_year - YEARS_BACK, -1))
    year = int_arg("year")
    if year is None:
        year = this_year
    if year not in years:
        abort(404)
    rows = evaluations.annual_report(current_user, area, year)
    fmt = request.args.get("format", "")
    if fmt in ("csv", "xlsx"):
        return download(fmt, evaluations.FIELDS, rows, f"annual-report-{area.id}-{year}", str(year))
    if fmt:
        abort(404)
    items = list(rows)
    page = page_arg()
    if area not in scopes:
        scopes.append(area)
    return render_template(
        "evaluations/annual.html",
        area=area,
        year=year,
        years=years,
        scopes=scopes,
        items=items[(page - 1) * PER_PAGE : page * PER_PAGE],
        page=page,
        per_page=PER_PAGE,
        total=len(items),
    )


@bp.route("/evaluations/<int:evaluation_id>/notice")
@login_required
def notice(evaluation_id: int) -> ResponseReturnValue:
    """Show the printable notice (公示, A4) of an evaluation: names and figures only."""
    try:
        evaluation = evaluations.get_evaluation(current_user, evaluation_id)
    except NotFound:
        abort(404)
    community = evaluations.get_area(evaluation.community_id)
    zone_ = zone(community.timezone)
    return render_template(
        "evaluations/notice.html",
        evaluation=evaluation,
        community=community,
        rows=evaluations.rows_of(evaluation),
        published=evaluation.published_at.astimezone(zone_) if evaluation.published_at else None,
        ends=evaluation.notice_ends_at.astimezone(zone_) if evaluation.notice_ends_at else None,
    )


@bp.route("/certificates/verify")
def verify() -> ResponseReturnValue:
    """Check a service certificate's verification code (public, no sign-in)."""
    code = request.args.get("code", "")
    found = None
    bad = False
    if code:
        try:
            found = evaluations.verify(code)
        except DomainError:
            bad = True
    return render_template(
        "evaluations/verify.html", code=code[:40], found=found, bad=bad, checked=bool(code)
    )


@bp.route("/users/<int:user_id>/certificate")
@login_required
def certificate(user_id: int) -> ResponseReturnValue:
    """Download a member's service certificate for a year (PDF)."""
    year = int_arg("year")
    if year is None:
        abort(404)
    try:
        with atomic():
            cert = evaluations.issue(current_user, user_id, year)
    except NotFound:
        abort(404)
    except DomainError:
        abort(404)
    pdf = certificate_pdf(cert.content, cert.code, verify_link(cert.code))
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f"attachment; filename=certificate-{user_id}-{year}.pdf"
    )
    return response


@bp.route("/reports/communities")
@login_required
def communities() -> ResponseReturnValue:
    """Compare the communities of an area in a year; ``format=csv|xlsx`` downloads it."""
    if not permissions.may(current_user, "reports.annual_page"):
        abort(403)
    scopes = _report_scopes()
    area_id = int_arg("area_id")
    try:
        area = evaluations.get_area(area_id) if area_id is not None else None
    except NotFound:
        abort(404)
    if area is None:
        if not scopes:
            abort(404)
        area = scopes[0]
    if area.kind == AreaKind.GRID:
        abort(404)
    if not permissions.may(current_user, "rankings.communities", area):
        abort(403)
    this_year = _this_year(area)
    years = list(range(this_year, this_year - YEARS_BACK, -1))
    year = int_arg("year") or this_year
    if year not in years:
        abort(404)
    rows = evaluations.comparison(current_user, area, year)
    fmt = request.args.get("format", "")
    if fmt in ("csv", "xlsx"):
        return download(
            fmt, evaluations.COMPARISON_FIELDS, rows, f"communities-{area.id}-{year}", str(year)
        )
    if fmt:
        abort(404)
    if area not in scopes:
        scopes.append(area)
    return render_template(
        "evaluations/communities.html",
        area=area,
        year=year,
        years=years,
        scopes=scopes,
        items=rows,
    )
