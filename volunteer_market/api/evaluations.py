"""/api/v1/reports/annual: the annual report (年度考核表) as JSON, CSV or XLSX.

Reads come from rollups only (``services/evaluations``).
"""

from __future__ import annotations

from typing import Any

from flask import Response

from ..http.exports import download
from ..schemas.evaluations import AnnualReportOut, AnnualReportQuery
from ..services import evaluations
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
    rows = evaluations.annual_report(actor(), area, args["year"])
    if args["format"] != "json":
        return download(
            args["format"],
            evaluations.FIELDS,
            rows,
            f"annual-report-{area.id}-{args['year']}",
            f"{args['year']}",
        )
    items = list(rows)
    page, per_page = args["page"], args["per_page"]
    return {
        "area_id": area.id,
        "year": args["year"],
        "items": items[(page - 1) * per_page : page * per_page],
        "page": page,
        "per_page": per_page,
        "total": len(items),
    }
