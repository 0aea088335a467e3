"""Annual report page (年度考核表): area and year pickers, the table, CSV/XLSX downloads;
the annual evaluation's pages: the list of evaluations, one evaluation with the
secretary's steps (close, publish for the notice, answer objections, finalize), the
objection form, the printable notice, certificates and their public check.

Every step goes through ``services.evaluations`` as the API does, from a CSRF form;
destructive steps need the confirmation box ticked; a success flashes and redirects
(Post/Redirect/Get); a refusal (bad input, wrong state) shows the page again with the
reason and its 409/422, nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..http.certificates import certificate_pdf, verify_link
from ..http.exports import download
from ..models import Area, AreaKind, Evaluation, EvaluationStatus, ObjectionStatus, utcnow
from ..models.evaluations import DEFAULT_NOTICE_DAYS, MAX_NOTICE_DAYS, MIN_NOTICE_DAYS
from ..schemas.evaluations import AnswerIn, EvaluationIn, ObjectionIn, PublishIn
from ..services import evaluations, permissions
from ..services import rankings as ranking_service
from ..services.errors import DomainError, NotFound
from ..zones import zone
from .forms import domain_errors, form_errors, form_id, int_arg
from .messages import message_text
from .paging import page_arg

bp = Blueprint("web_evaluations", __name__)

PER_PAGE = 50
#: Rows above which the page warns that a download takes a while (a street's 10,000
#: rows take 1-2 s as CSV, a district's 100,000 rows 6 s as CSV and 8-25 s as XLSX).
LARGE_EXPORT = 20_000
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
    fmt = request.args.get("format", "")
    if fmt in ("csv", "xlsx"):
        rows = evaluations.annual_report(current_user, area, year)
        return download(fmt, evaluations.FIELDS, rows, f"annual-report-{area.id}-{year}", str(year))
    if fmt:
        abort(404)
    page = page_arg()
    items, total = evaluations.annual_report_page(current_user, area, year, page, PER_PAGE)
    if area not in scopes:
        scopes.append(area)
    return render_template(
        "evaluations/annual.html",
        area=area,
        year=year,
        years=years,
        scopes=scopes,
        items=items,
        page=page,
        per_page=PER_PAGE,
        total=total,
        large_export=LARGE_EXPORT,
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


# --- the lifecycle pages: close -> publish (公示) -> objections -> finalize --------------

ROWS_PER_PAGE = 50
STEP_ERRORS = (409, 422)


def _list_scopes() -> list[Area]:
    """Areas whose evaluations the current user may list (not grids)."""
    return [
        a
        for a in ranking_service.scope_choices(current_user)
        if permissions.may(current_user, "evaluation.list", a)
    ]


def _confirmed() -> dict[str, list[str]]:
    """Errors unless the form's confirmation box is ticked (destructive steps)."""
    if request.form.get("confirm") == "1":
        return {}
    return {"confirm": [_("请勾选确认后再提交。")]}


def _refusal(exc: DomainError) -> dict[str, list[str]]:
    """A service's refusal as page errors: its sentence first, then its field messages
    (a state such as ``in_notice`` is not shown as it is)."""
    errors = domain_errors(exc)
    if exc.status == 409:
        return {"_schema": [message_text(exc.detail)]}
    return errors


def _published() -> list[tuple[Evaluation, Area]]:
    """The published lists of the current user's communities (member, resident)."""
    return [
        (e, evaluations.get_area(e.community_id)) for e in evaluations.published_for(current_user)
    ]


def _list_page(
    area: Area, year: int | None, errors: dict[str, list[str]] | None = None, status: int = 200
) -> ResponseReturnValue:
    """The evaluations of ``area``: per year for a community, per community for a year
    above it (an officer, read only)."""
    this_year = _this_year(area)
    found = evaluations.evaluations_in(current_user, area)
    scopes = _list_scopes()
    if area not in scopes:
        scopes.append(area)
    manage = permissions.may(current_user, "evaluation.manage", area)
    if area.kind == AreaKind.COMMUNITY:
        by_year = {e.year: e for e in found}
        years = [
            {"year": y, "evaluation": by_year.get(y), "ended": y < this_year}
            for y in range(this_year, this_year - YEARS_BACK, -1)
        ]
        shown = {y["year"] for y in years}
        years += [
            {"year": e.year, "evaluation": e, "ended": True} for e in found if e.year not in shown
        ]
        communities = []
    else:
        years = []
        year = year if year is not None else this_year - 1
        of_year = {e.community_id: e for e in found if e.year == year}
        communities = [
            {"community": c, "evaluation": of_year.get(c.id)}
            for c in evaluations.communities_under(area)
        ]
    return render_template(
        "evaluations/list.html",
        area=area,
        scopes=scopes,
        manage=manage,
        years=years,
        year=year,
        year_choices=list(range(this_year - 1, this_year - 1 - YEARS_BACK, -1)),
        communities=communities,
        published=_published(),
        errors=errors or {},
        form=request.form,
    ), status


@bp.route("/evaluations")
@login_required
def evaluation_list() -> ResponseReturnValue:
    """The evaluations the current user may see: staff pick an area (their community,
    or as an officer a street or the district), members and residents see the published
    lists of their communities."""
    scopes = _list_scopes()
    area_id = int_arg("area_id")
    if area_id is None and not scopes:
        return render_template(
            "evaluations/list.html",
            area=None,
            scopes=[],
            manage=False,
            years=[],
            year=None,
            year_choices=[],
            communities=[],
            published=_published(),
            errors={},
            form={},
        )
    try:
        area = scopes[0] if area_id is None else evaluations.get_area(area_id)
    except NotFound:
        abort(404)
    if not permissions.may(current_user, "evaluation.list", area):
        abort(403)
    return _list_page(area, int_arg("year"))


@bp.route("/evaluations/close", methods=["POST"])
@login_required
def close() -> ResponseReturnValue:
    """Close a year for the community (secretary): its rows are frozen."""
    raw = {k: request.form.get(k, "") for k in ("community_id", "year")}
    community_id = form_id(raw["community_id"])
    try:
        community = evaluations.get_area(community_id)
    except NotFound:
        abort(404)
    permissions.require(current_user, "evaluation.manage", community)
    errors: dict[str, list[str]] = {}
    status = 422
    try:
        loaded = EvaluationIn().load(raw)
    except ValidationError as exc:
        errors = form_errors(exc)
    else:
        errors = _confirmed()
        if not errors:
            try:
                with atomic():
                    evaluation = evaluations.close_year(current_user, community.id, loaded["year"])
            except DomainError as exc:
                if exc.status not in STEP_ERRORS:
                    raise
                errors, status = _refusal(exc), exc.status
            else:
                flash(_("%(year)s 年度已关账，名单已冻结。", year=evaluation.year), "success")
                return redirect(url_for("web_evaluations.evaluation", evaluation_id=evaluation.id))
    return _list_page(community, None, errors, status)


def _visible(evaluation_id: int) -> Evaluation:
    try:
        return evaluations.get_evaluation(current_user, evaluation_id)
    except NotFound:
        abort(404)


def _detail_page(
    evaluation: Evaluation,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    answering: int | None = None,
) -> ResponseReturnValue:
    community = evaluations.get_area(evaluation.community_id)
    zone_ = zone(community.timezone)
    full = permissions.may(current_user, "evaluation.view_full", evaluation)
    rows = evaluations.rows_of(evaluation)
    objections = evaluations.objections_visible(current_user, evaluation)
    names = {r["user_id"]: r["display_name"] for r in rows}
    now = utcnow()
    noticing = evaluation.status == EvaluationStatus.IN_NOTICE and (
        evaluation.notice_ends_at is None or now < evaluation.notice_ends_at
    )
    if answering not in {o.id for o in objections if o.status == ObjectionStatus.OPEN}:
        answering = None  # its form is gone: the reason shows at the top
    page = page_arg()
    return render_template(
        "evaluations/evaluation.html",
        evaluation=evaluation,
        community=community,
        full=full,
        manage=permissions.may(current_user, "evaluation.manage", community),
        may_object=noticing and permissions.may(current_user, "evaluation.object", evaluation),
        noticing=noticing,
        rows=rows[(page - 1) * ROWS_PER_PAGE : page * ROWS_PER_PAGE],
        total=len(rows),
        page=page,
        per_page=ROWS_PER_PAGE,
        names=names,
        objections=objections,
        open_count=sum(1 for o in objections if o.status == ObjectionStatus.OPEN),
        local=lambda t: t.astimezone(zone_).strftime("%Y-%m-%d %H:%M") if t else "—",
        default_days=DEFAULT_NOTICE_DAYS,
        min_days=MIN_NOTICE_DAYS,
        max_days=MAX_NOTICE_DAYS,
        errors=errors or {},
        form=request.form,
        answering=answering,
    ), status


@bp.route("/evaluations/<int:evaluation_id>")
@login_required
def evaluation(evaluation_id: int) -> ResponseReturnValue:
    """One evaluation: its state, the list, the objections and the secretary's next step;
    ``format=csv|xlsx`` downloads the list (names and figures only for members)."""
    found = _visible(evaluation_id)
    fmt = request.args.get("format", "")
    if fmt in ("csv", "xlsx"):
        full = permissions.may(current_user, "evaluation.view_full", found)
        fields = (*evaluations.ROW_FIELDS, "correction") if full else evaluations.PUBLIC_FIELDS
        return download(
            fmt,
            fields,
            evaluations.rows_of(found),
            f"evaluation-{found.community_id}-{found.year}",
            str(found.year),
        )
    if fmt:
        abort(404)
    return _detail_page(found)


def _step(
    evaluation_id: int, run: Callable[[Evaluation], object], done: str
) -> ResponseReturnValue:
    """Run a confirmed secretary step on the evaluation (PRG), or show why not."""
    found = _visible(evaluation_id)
    permissions.require(current_user, "evaluation.manage", evaluations.get_area(found.community_id))
    errors, status = _confirmed(), 422
    if not errors:
        try:
            with atomic():
                run(found)
        except ValidationError as exc:
            errors = form_errors(exc)
        except DomainError as exc:
            if exc.status not in STEP_ERRORS:
                raise
            errors, status = _refusal(exc), exc.status
        else:
            flash(done, "success")
            return redirect(url_for("web_evaluations.evaluation", evaluation_id=found.id))
    return _detail_page(_visible(evaluation_id), errors, status)


@bp.route("/evaluations/<int:evaluation_id>/publish", methods=["POST"])
@login_required
def publish(evaluation_id: int) -> ResponseReturnValue:
    """Publish a closed evaluation for its notice period (公示)."""
    days = request.form.get("notice_days", "").strip()

    def run(found: Evaluation) -> None:
        loaded = PublishIn().load({"notice_days": days} if days else {})
        evaluations.publish(current_user, found, loaded["notice_days"])

    return _step(evaluation_id, run, _("名单已公示，已通知本社区党员和居民。"))


@bp.route("/evaluations/<int:evaluation_id>/finalize", methods=["POST"])
@login_required
def finalize(evaluation_id: int) -> ResponseReturnValue:
    """Finalize an evaluation whose notice has ended and whose objections are answered."""
    return _step(
        evaluation_id,
        lambda found: evaluations.finalize(current_user, found),
        _("名单已定稿。"),
    )


@bp.route("/evaluations/<int:evaluation_id>/objections/new", methods=["GET", "POST"])
@login_required
def new_objection(evaluation_id: int) -> ResponseReturnValue:
    """File an objection during the notice (a member or resident of the community)."""
    found = _visible(evaluation_id)
    permissions.require(current_user, "evaluation.object", found)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        raw = {"text": request.form.get("text", "")}
        if request.form.get("user_id"):
            raw["user_id"] = request.form["user_id"]
        try:
            loaded = ObjectionIn().load(raw)
            with atomic():
                evaluations.file_objection(current_user, found, loaded["text"], loaded["user_id"])
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            if exc.status not in STEP_ERRORS:
                raise
            errors, status = _refusal(exc), exc.status
        else:
            flash(_("异议已提交，社区书记答复后会通知您。"), "success")
            return redirect(url_for("web_evaluations.evaluation", evaluation_id=found.id))
            found = _visible(evaluation_id)
    community = evaluations.get_area(found.community_id)
    return render_template(
        "evaluations/objection_form.html",
        evaluation=found,
        community=community,
        rows=evaluations.rows_of(found),
        me=current_user.id,
        form=request.form,
        errors=errors,
    ), status


@bp.route("/objections/<int:objection_id>/answer", methods=["POST"])
@login_required
def answer(objection_id: int) -> ResponseReturnValue:
    """Answer an objection (secretary): upheld (an optional point correction through the
    ledger, confirmed) or dismissed with the reason."""
    try:
        objection = evaluations.get_objection(current_user, objection_id)
    except NotFound:
        abort(404)
    found = _visible(objection.evaluation_id)
    permissions.require(current_user, "evaluation.manage", evaluations.get_area(found.community_id))
    raw = {k: request.form.get(k, "") for k in ("decision", "answer", "amount")}
    if not raw["amount"].strip():
        raw.pop("amount")
    errors: dict[str, list[str]] = {}
    status = 422
    try:
        loaded = AnswerIn().load(raw)
    except ValidationError as exc:
        errors = form_errors(exc)
    else:
        if loaded["amount"] is not None:
            errors = _confirmed()
        if not errors:
            try:
                with atomic():
                    evaluations.answer(
                        current_user,
                        objection,
                        loaded["decision"],
                        loaded["answer"],
                        loaded["amount"],
                    )
            except DomainError as exc:
                if exc.status not in STEP_ERRORS:
                    raise
                errors, status = _refusal(exc), exc.status
            else:
                flash(_("异议已答复，已通知提出人。"), "success")
                return redirect(url_for("web_evaluations.evaluation", evaluation_id=found.id))
    return _detail_page(_visible(found.id), errors, status, answering=objection_id)
