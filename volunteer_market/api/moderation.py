"""/api/v1 comment moderation and call-backs (回访): a member reports a rating's
comment, the community's secretary works the queue (hide with a reason, dismiss,
unhide), and phones a sample of proxy ratings back."""

from __future__ import annotations

from typing import Any

from ..database import atomic
from ..models import CommentReport, Rating, RatingCallback, utcnow
from ..schemas.common import page_of
from ..schemas.moderation import (
    CallbackIn,
    CallbackOut,
    CallbacksOut,
    CallbacksQuery,
    ModeratedOut,
    OptionalReasonIn,
    QueueReportOut,
    ReasonIn,
    ReportOut,
    ReportsQuery,
)
from ..services import areas as area_service
from ..services import callbacks as callback_service
from ..services import moderation as moderation_service
from ..services import ratings as rating_service
from .common import actor, make_blueprint, paginate, problem_response

blp = make_blueprint("api_moderation", "", "Comment moderation and call-backs")


@blp.route("/ratings/<int:rating_id>/reports", methods=["POST"])
@blp.arguments(ReasonIn)
@blp.response(201, ReportOut)
@blp.alt_response(404, response=problem_response(404))  # a rating the caller may not see
@blp.alt_response(409, response=problem_response(409))  # no comment, hidden, reported
def report(data: dict, rating_id: int) -> CommentReport:
    """Report a rating's comment ``{reason}``: a member who served in the delivery, once."""
    with atomic():
        rating = rating_service.get_visible_rating(actor(), rating_id)
        return moderation_service.report_comment(actor(), rating, data["reason"])


@blp.route("/comment-reports", methods=["GET"])
@blp.arguments(ReportsQuery, location="query")
@blp.response(200, page_of(QueueReportOut))
@blp.alt_response(404, response=problem_response(404))  # no such community
def reports(args: dict) -> dict[str, Any]:
    """The community's reported comments (its secretary): ``status`` ``open`` (the
    queue, default), ``hidden``, ``dismissed`` or ``all``; oldest first."""
    community = area_service.get_area(args["community_id"])
    status = None if args["status"] == "all" else args["status"]
    stmt = moderation_service.reports_query(actor(), community, status)
    page = paginate(stmt, args["page"], args["per_page"])
    page["items"] = moderation_service.present_reports(actor(), page["items"])
    return page


@blp.route("/comment-reports/<int:report_id>/dismiss", methods=["POST"])
@blp.arguments(OptionalReasonIn)
@blp.response(200, ReportOut)
@blp.alt_response(409, response=problem_response(409))  # already resolved
def dismiss(data: dict, report_id: int) -> CommentReport:
    """Dismiss one open report ``{reason?}``; the comment stays visible."""
    with atomic():
        found = moderation_service.get_visible_report(actor(), report_id)
        return moderation_service.dismiss_report(actor(), found, data.get("reason"))


@blp.route("/ratings/<int:rating_id>/hide", methods=["POST"])
@blp.arguments(ReasonIn)
@blp.response(200, ModeratedOut)
@blp.alt_response(409, response=problem_response(409))  # no comment, already hidden
def hide(data: dict, rating_id: int) -> Rating:
    """Hide the comment ``{reason}`` (the community's secretary, not a party to it); its
    open reports are resolved as ``hidden``. Never deleted; audited."""
    with atomic():
        rating = rating_service.get_visible_rating(actor(), rating_id)
        return moderation_service.hide_comment(actor(), rating, data["reason"])


@blp.route("/ratings/<int:rating_id>/unhide", methods=["POST"])
@blp.arguments(OptionalReasonIn)
@blp.response(200, ModeratedOut)
@blp.alt_response(409, response=problem_response(409))  # not hidden
def unhide(data: dict, rating_id: int) -> Rating:
    """Show a hidden comment again ``{reason?}`` (the community's secretary); audited."""
    with atomic():
        rating = rating_service.get_visible_rating(actor(), rating_id)
        return moderation_service.unhide_comment(actor(), rating, data.get("reason"))


@blp.route("/callbacks", methods=["GET"])
@blp.arguments(CallbacksQuery, location="query")
@blp.response(200, CallbacksOut)
@blp.alt_response(404, response=problem_response(404))  # no such community
def callbacks(args: dict) -> dict[str, Any]:
    """Today's sample of the community's proxy ratings to phone back (回访; its
    secretary), with the residents' phones, and the latest recorded call-backs."""
    community = area_service.get_area(args["community_id"])
    now = utcnow()
    return {
        "community_id": community.id,
        "since": now - callback_service.CALLBACK_WINDOW,
        "sample": callback_service.sample(actor(), community, now=now),
        "recorded": callback_service.recent_callbacks(actor(), community),
    }


@blp.route("/ratings/<int:rating_id>/callbacks", methods=["POST"])
@blp.arguments(CallbackIn)
@blp.response(201, CallbackOut)
@blp.alt_response(409, response=problem_response(409))  # not a proxy; already final
def record_callback(data: dict, rating_id: int) -> dict[str, Any]:
    """Record a call-back of a proxy rating ``{outcome: confirmed|disputed|unreachable,
    note?}`` (a note is required for ``disputed``, which lets the resident appeal)."""
    with atomic():
        rating = rating_service.get_visible_rating(actor(), rating_id)
        made: RatingCallback = callback_service.record_callback(
            actor(), rating, data["outcome"], data.get("note")
        )
        return callback_service.present_callback(made, caller_name=actor().display_name)
