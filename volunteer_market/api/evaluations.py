"""/api/v1/reports/annual (the annual report as JSON, CSV or XLSX, read from rollups
only), /api/v1/evaluations (close, publish, objections, finalize) and
/api/v1/objections/{id}/answer (``services/evaluations``).
"""

from __future__ import annotations

from typing import Any

from flask import Response

from ..database import atomic
from ..http.certificates import certificate_pdf, verify_link
from ..http.exports import download
from ..schemas.evaluations import (
    AnnualReportOut,
    AnnualReportQuery,
    AnswerIn,
    CertificateQuery,
    ComparisonOut,
    ComparisonQuery,
    EvaluationIn,
    EvaluationOut,
    EvaluationQuery,
    ObjectionIn,
    ObjectionOut,
    PublishIn,
)
from ..services import evaluations, permissions
from .common import actor, make_blueprint, problem_response

blp = make_blueprint("api_evaluations", "", "Annual report and annual evaluation")


@blp.route("/reports/annual", methods=["GET"])
@blp.arguments(AnnualReportQuery, location="query")
@blp.response(200, AnnualReportOut)
@blp.alt_response(404, response=problem_response(404))  # no such area_id
def annual_report(args: dict) -> dict[str, Any] | Response:
    """The annual report of an area's members for a year: hours, deliveries, projects
    led and joined, average score, points earned, spent and expired, ranks.

    An officer over the area (its subtree), the community's secretary. ``format=csv``
    (UTF-8 with BOM) and ``format=xlsx`` return every row as a download; JSON pages.
    """
    area = evaluations.get_area(args["area_id"])
    if args["format"] != "json":
        return download(
            args["format"],
            evaluations.FIELDS,
            evaluations.annual_report(actor(), area, args["year"]),
            f"annual-report-{area.id}-{args['year']}",
            f"{args['year']}",
        )
    page, per_page = args["page"], args["per_page"]
    items, total = evaluations.annual_report_page(actor(), area, args["year"], page, per_page)
    return {
        "area_id": area.id,
        "year": args["year"],
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
    }


PUBLIC_FIELDS = evaluations.PUBLIC_FIELDS


def _present(user: Any, evaluation: Any) -> dict[str, Any]:
    full = permissions.may(user, "evaluation.view_full", evaluation)
    rows = evaluations.rows_of(evaluation)
    if not full:
        rows = [{k: r[k] for k in PUBLIC_FIELDS} for r in rows]
    return {
        "id": evaluation.id,
        "community_id": evaluation.community_id,
        "year": evaluation.year,
        "status": evaluation.status.value,
        "closed_at": evaluation.closed_at,
        "notice_days": evaluation.notice_days,
        "published_at": evaluation.published_at,
        "notice_ends_at": evaluation.notice_ends_at,
        "finalized_at": evaluation.finalized_at,
        "rows": rows,
        "objections": evaluations.objections_of(evaluation) if full else [],
    }


@blp.route("/evaluations", methods=["POST"])
@blp.arguments(EvaluationIn)
@blp.response(201, EvaluationOut)
@blp.alt_response(404, response=problem_response(404))
@blp.alt_response(409, response=problem_response(409))
def close_year(data: dict) -> dict[str, Any]:
    """Close a year for a community (secretary): its rows are frozen, ``status: closed``.

    409 if the year has not ended yet or is already closed.
    """
    user = actor()
    with atomic():
        evaluation = evaluations.close_year(user, data["community_id"], data["year"])
        return _present(user, evaluation)


@blp.route("/evaluations/<int:evaluation_id>", methods=["GET"])
@blp.arguments(EvaluationQuery, location="query")
@blp.response(200, EvaluationOut)
@blp.alt_response(404, response=problem_response(404))
def get_evaluation(args: dict, evaluation_id: int) -> dict[str, Any] | Response:
    """An evaluation with its frozen rows: the secretary and officers always; members
    and residents of the community once it is published (names and figures only).
    ``format=csv`` or ``xlsx`` downloads the rows."""
    user = actor()
    evaluation = evaluations.get_evaluation(user, evaluation_id)
    body = _present(user, evaluation)
    if args["format"] != "json":
        full = permissions.may(user, "evaluation.view_full", evaluation)
        fields = (*evaluations.ROW_FIELDS, "correction") if full else PUBLIC_FIELDS
        return download(
            args["format"],
            fields,
            body["rows"],
            f"evaluation-{evaluation.community_id}-{evaluation.year}",
            str(evaluation.year),
        )
    return body


def _step(evaluation_id: int, step: Any) -> dict[str, Any]:
    user = actor()
    with atomic():
        evaluation = evaluations.get_evaluation(user, evaluation_id)
        step(user, evaluation)
        return _present(user, evaluation)


@blp.route("/evaluations/<int:evaluation_id>/publish", methods=["POST"])
@blp.arguments(PublishIn)
@blp.response(200, EvaluationOut)
@blp.alt_response(404, response=problem_response(404))
@blp.alt_response(409, response=problem_response(409))
def publish(data: dict, evaluation_id: int) -> dict[str, Any]:
    """Publish a closed evaluation for its notice period (公示; ``notice_days``
    default 7) → ``status: in_notice``, ``notice_ends_at``."""
    return _step(evaluation_id, lambda u, e: evaluations.publish(u, e, data.get("notice_days")))


@blp.route("/evaluations/<int:evaluation_id>/finalize", methods=["POST"])
@blp.response(200, EvaluationOut)
@blp.alt_response(404, response=problem_response(404))
@blp.alt_response(409, response=problem_response(409))
def finalize(evaluation_id: int) -> dict[str, Any]:
    """Finalize (secretary) → ``status: final``; 409 while the notice runs or an
    objection is open."""
    return _step(evaluation_id, evaluations.finalize)


@blp.route("/evaluations/<int:evaluation_id>/objections", methods=["POST"])
@blp.arguments(ObjectionIn)
@blp.response(201, ObjectionOut)
@blp.alt_response(404, response=problem_response(404))
@blp.alt_response(409, response=problem_response(409))
def file_objection(data: dict, evaluation_id: int) -> Any:
    """File an objection during the notice (a member or resident of the community)
    → ``status: open``; ``user_id`` names the row it concerns."""
    user = actor()
    with atomic():
        evaluation = evaluations.get_evaluation(user, evaluation_id)
        return evaluations.file_objection(user, evaluation, data["text"], data["user_id"])


@blp.route("/objections/<int:objection_id>/answer", methods=["POST"])
@blp.arguments(AnswerIn)
@blp.response(200, ObjectionOut)
@blp.alt_response(404, response=problem_response(404))
@blp.alt_response(409, response=problem_response(409))
def answer_objection(data: dict, objection_id: int) -> Any:
    """Answer an objection (secretary): ``upheld`` (``amount`` posts a ledger
    adjustment and the frozen row is recomputed) or ``dismissed`` with the reason."""
    user = actor()
    with atomic():
        objection = evaluations.get_objection(user, objection_id)
        return evaluations.answer(user, objection, data["decision"], data["answer"], data["amount"])


@blp.route("/users/<int:user_id>/certificate", methods=["GET"])
@blp.arguments(CertificateQuery, location="query")
@blp.response(200, content_type="application/pdf")
@blp.alt_response(404, response=problem_response(404))
def certificate(args: dict, user_id: int) -> Response:
    """The member's service certificate (服务证明) for a year as a PDF, with a
    verification code anyone can check at ``/certificates/verify``: the member, the
    secretary of their community, an officer over it."""
    user = actor()
    with atomic():
        cert = evaluations.issue(user, user_id, args["year"], args["community_id"])
    pdf = certificate_pdf(cert.content, cert.code, verify_link(cert.code))
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f"attachment; filename=certificate-{user_id}-{args['year']}.pdf"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/reports/communities", methods=["GET"])
@blp.arguments(ComparisonQuery, location="query")
@blp.response(200, ComparisonOut)
@blp.alt_response(404, response=problem_response(404))
def comparison(args: dict) -> dict[str, Any] | Response:
    """Compare the communities of an area's subtree in a year (officers; a secretary for
    their community): members, active members, points, hours, participation rate.
    ``format=csv`` or ``xlsx`` downloads it."""
    area = evaluations.get_area(args["area_id"])
    rows = evaluations.comparison(actor(), area, args["year"])
    if args["format"] != "json":
        return download(
            args["format"],
            evaluations.COMPARISON_FIELDS,
            rows,
            f"communities-{area.id}-{args['year']}",
            str(args["year"]),
        )
    return {"area_id": area.id, "year": args["year"], "items": rows}
