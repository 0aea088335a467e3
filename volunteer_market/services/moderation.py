"""Moderation of rating comments (评语管理): members report, the secretary hides.

Design overview
===============

Report (``rating.report``). A member who served in the rated delivery reports its
comment once, with a reason (UNIQUE ``(rating_id, reporter_id)``; 409 before the
insert, the constraint is the backstop). A rating without a comment, or whose comment
is already hidden, takes no report (409).

Queue. The community's secretary (``moderation.community``) lists the reports of his
community by status (``open`` first: the queue), each with the comment it is about.

Decision (``rating.moderate`` on ``permissions.RatingOversight``): the secretary of the
delivery's community -- never one who served in or recorded the delivery, nor who gave
or entered the rating (the no-self-dealing guard) --

* **hides** the comment with a reason: one conditional ``UPDATE ratings ... WHERE
  comment_hidden_at IS NULL`` (of two concurrent hides one wins, the other is 409),
  which also resolves every open report of the rating as ``hidden``;
* **dismisses** one open report (conditional ``UPDATE ... WHERE status = 'open'``);
* **unhides** a hidden comment (conditional ``UPDATE ... WHERE comment_hidden_at IS
  NOT NULL``); resolved reports stay resolved.

A hidden comment is never deleted: the text stays in ``ratings.comment`` and every step
is in the audit log (``comment.report``, ``comment.hide``, ``comment.unhide``,
``comment.dismiss``). Wherever comments are shown (``ratings.present_ratings``: the
delivery's ratings, the member's and resident's lists, the API) a hidden comment is
``null`` with ``comment_hidden: true``, except to the community's secretary
(``rating.hidden_view``), who sees it with ``comment_hidden_reason``. The rater may
still change the score of a rating whose comment is hidden, never the comment itself
(``ratings.change_rating``: 409), so the hidden text is kept. Nothing here moves points.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import (
    MODERATION_TEXT_MAX,
    Area,
    CommentReport,
    Delivery,
    Project,
    Rating,
    ReportStatus,
    User,
    utcnow,
)
from . import audit, permissions
from .errors import Conflict, Forbidden, NotFound, ValidationFailed

#: Which reports a queue lists (``status`` filter); ``None`` lists every report.
REPORT_STATUSES = tuple(s.value for s in ReportStatus)


def clean_reason(text: Any, *, required: bool = True, field: str = "reason") -> str | None:
    """Return the stripped reason (None when empty and not required).

    :raises ValidationFailed: missing when required, or too long.
    """
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        if required:
            raise ValidationFailed("A reason is required.", errors={field: ["Required."]})
        return None
    if len(value) > MODERATION_TEXT_MAX:
        raise ValidationFailed(
            "The reason is too long.",
            errors={field: [f"At most {MODERATION_TEXT_MAX} characters."]},
        )
    return value


def _delivery(rating: Rating) -> Delivery:
    delivery = db.session.get(Delivery, rating.delivery_id)
    if delivery is None:
        raise NotFound("Rating not found.")
    return delivery


def _rowcount(stmt: Any) -> int:
    return cast("sa.CursorResult[Any]", db.session.execute(stmt)).rowcount


# --- reporting ----------------------------------------------------------------------


def report_comment(
    actor: User, rating: Rating, reason: Any, *, now: datetime | None = None
) -> CommentReport:
    """Report the rating's comment (a member who served in the delivery), once.

    :raises Forbidden: not a participant of the rated delivery.
    :raises ValidationFailed: missing or too long reason.
    :raises Conflict: no comment, already hidden, already reported by ``actor``.
    """
    permissions.require(actor, "rating.report", rating)
    text = cast(str, clean_reason(reason))
    if not rating.comment:
        raise Conflict("This rating has no comment to report.")
    if rating.comment_hidden_at is not None:
        raise Conflict("This comment is already hidden.")
    exists = db.session.execute(
        sa.select(CommentReport.id).where(
            CommentReport.rating_id == rating.id, CommentReport.reporter_id == actor.id
        )
    ).first()
    if exists is not None:
        raise Conflict("You have already reported this comment.", report_id=exists[0])
    delivery = _delivery(rating)
    report = CommentReport(
        rating_id=rating.id,
        community_id=delivery.community_id,
        reporter_id=actor.id,
        reason=text,
        created_at=now or utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(report)
            db.session.flush()
    except IntegrityError:
        raise Conflict("You have already reported this comment.") from None
    audit.record(
        actor,
        "comment.report",
        "rating",
        rating.id,
        area_id=delivery.community_id,
        detail={"report_id": report.id},
    )
    return report


# --- the secretary's decisions ------------------------------------------------------


def hide_comment(
    actor: User, rating: Rating, reason: Any, *, now: datetime | None = None
) -> Rating:
    """Hide the rating's comment with a reason; resolve its open reports as ``hidden``.

    :raises Forbidden: not the community's secretary, or a party to the rating.
    :raises ValidationFailed: missing or too long reason.
    :raises Conflict: no comment, or already hidden (also a concurrent hide).
    """
    permissions.require(actor, "rating.moderate", permissions.RatingOversight(rating))
    text = cast(str, clean_reason(reason))
    if not rating.comment:
        raise Conflict("This rating has no comment to hide.")
    now = now or utcnow()
    changed = _rowcount(
        sa.update(Rating)
        .where(Rating.id == rating.id, Rating.comment_hidden_at.is_(None))
        .values(comment_hidden_at=now, comment_hidden_by_id=actor.id, comment_hidden_reason=text)
        .execution_options(synchronize_session=False)
    )
    if changed == 0:
        raise Conflict("This comment is already hidden.")
    resolved = _rowcount(
        sa.update(CommentReport)
        .where(CommentReport.rating_id == rating.id, CommentReport.status == ReportStatus.OPEN)
        .values(
            status=ReportStatus.HIDDEN,
            resolved_by_id=actor.id,
            resolved_at=now,
            resolution_reason=text,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(rating)
    audit.record(
        actor,
        "comment.hide",
        "rating",
        rating.id,
        area_id=_delivery(rating).community_id,
        detail={"reason": text, "reports_resolved": resolved},
    )
    return rating


def unhide_comment(actor: User, rating: Rating, reason: Any = None) -> Rating:
    """Show a hidden comment again (resolved reports stay resolved).

    :raises Forbidden: not the community's secretary, or a party to the rating.
    :raises ValidationFailed: too long reason.
    :raises Conflict: the comment is not hidden.
    """
    permissions.require(actor, "rating.moderate", permissions.RatingOversight(rating))
    text = clean_reason(reason, required=False)
    previous = rating.comment_hidden_reason
    changed = _rowcount(
        sa.update(Rating)
        .where(Rating.id == rating.id, Rating.comment_hidden_at.is_not(None))
        .values(comment_hidden_at=None, comment_hidden_by_id=None, comment_hidden_reason=None)
        .execution_options(synchronize_session=False)
    )
    if changed == 0:
        raise Conflict("This comment is not hidden.")
    db.session.refresh(rating)
    audit.record(
        actor,
        "comment.unhide",
        "rating",
        rating.id,
        area_id=_delivery(rating).community_id,
        detail={"reason": text, "hidden_reason": previous},
    )
    return rating


def dismiss_report(
    actor: User, report: CommentReport, reason: Any = None, *, now: datetime | None = None
) -> CommentReport:
    """Dismiss one open report (the comment stays visible).

    :raises Forbidden: not the community's secretary, or a party to the rating.
    :raises ValidationFailed: too long reason.
    :raises Conflict: the report is no longer open.
    """
    rating = db.session.get(Rating, report.rating_id)
    if rating is None:
        raise NotFound("Report not found.")
    permissions.require(actor, "rating.moderate", permissions.RatingOversight(rating))
    text = clean_reason(reason, required=False)
    changed = _rowcount(
        sa.update(CommentReport)
        .where(CommentReport.id == report.id, CommentReport.status == ReportStatus.OPEN)
        .values(
            status=ReportStatus.DISMISSED,
            resolved_by_id=actor.id,
            resolved_at=now or utcnow(),
            resolution_reason=text,
        )
        .execution_options(synchronize_session=False)
    )
    if changed == 0:
        raise Conflict("This report has already been resolved.")
    db.session.refresh(report)
    audit.record(
        actor,
        "comment.dismiss",
        "rating",
        rating.id,
        area_id=report.community_id,
        detail={"report_id": report.id, "reason": text},
    )
    return report


# --- reading ------------------------------------------------------------------------


def get_visible_report(actor: User, report_id: int) -> CommentReport:
    """Return the report if ``actor`` reads its community's queue, else :class:`NotFound`."""
    report = db.session.get(CommentReport, report_id)
    area = db.session.get(Area, report.community_id) if report is not None else None
    if report is None or area is None or not permissions.may(actor, "moderation.community", area):
        raise NotFound("Report not found.")
    return report


def reports_query(
    actor: User, community: Area, status: str | None = ReportStatus.OPEN.value
) -> sa.Select[CommentReport]:
    """Return a SELECT of the community's reports (``status`` None: all), oldest first.

    :raises Forbidden: not the community's secretary.
    """
    if not permissions.may(actor, "moderation.community", community):
        raise Forbidden("Only the community's secretary reads its reports.", action="moderation")
    stmt = sa.select(CommentReport).where(CommentReport.community_id == community.id)
    if status is not None:
        stmt = stmt.where(CommentReport.status == ReportStatus(status))
    return stmt.order_by(CommentReport.created_at, CommentReport.id)


def present_reports(actor: User, reports: list[CommentReport]) -> list[dict[str, Any]]:
    """Return reports with the comment, its delivery and project, for the secretary."""
    rating_ids = sorted({r.rating_id for r in reports})
    ratings: dict[int, Any] = {}
    if rating_ids:
        rows = db.session.execute(
            sa.select(Rating, Delivery.project_id, Project.title)
            .join(Delivery, Delivery.id == Rating.delivery_id)
            .join(Project, Project.id == Delivery.project_id)
            .where(Rating.id.in_(rating_ids))
        ).all()
        ratings = {row[0].id: row for row in rows}
    people = {r.reporter_id for r in reports}
    names = dict(
        db.session.execute(
            sa.select(User.id, User.display_name).where(User.id.in_(sorted(people) or [0]))
        ).all()
    )
    out = []
    for report in reports:
        rating, project_id, title = ratings[report.rating_id]
        out.append(
            {
                "id": report.id,
                "rating_id": report.rating_id,
                "delivery_id": rating.delivery_id,
                "project_id": project_id,
                "project_title": title,
                "score": rating.score,
                "comment": rating.comment,
                "comment_hidden": rating.comment_hidden_at is not None,
                "comment_hidden_reason": rating.comment_hidden_reason,
                "reporter_id": report.reporter_id,
                "reporter_name": names.get(report.reporter_id, ""),
                "reason": report.reason,
                "status": report.status.value,
                "created_at": report.created_at,
                "resolved_at": report.resolved_at,
                "resolution_reason": report.resolution_reason,
                "can_decide": permissions.may(
                    actor, "rating.moderate", permissions.RatingOversight(rating)
                ),
            }
        )
    return out


#: How many hidden comments :func:`hidden_comments` lists (the newest).
HIDDEN_LIMIT = 50


def hidden_comments(actor: User, community: Area) -> list[dict[str, Any]]:
    """Return the community's hidden comments, newest first, for the secretary.

    :raises Forbidden: not the community's secretary.
    """
    if not permissions.may(actor, "moderation.community", community):
        raise Forbidden("Only the community's secretary reads its reports.", action="moderation")
    rows = db.session.execute(
        sa.select(Rating, Project.title)
        .join(Delivery, Delivery.id == Rating.delivery_id)
        .join(Project, Project.id == Delivery.project_id)
        .where(Delivery.community_id == community.id, Rating.comment_hidden_at.is_not(None))
        .order_by(Rating.comment_hidden_at.desc(), Rating.id.desc())
        .limit(HIDDEN_LIMIT)
    ).all()
    return [
        {
            "rating_id": rating.id,
            "delivery_id": rating.delivery_id,
            "project_title": title,
            "score": rating.score,
            "comment": rating.comment,
            "comment_hidden_at": rating.comment_hidden_at,
            "comment_hidden_reason": rating.comment_hidden_reason,
            "can_decide": permissions.may(
                actor, "rating.moderate", permissions.RatingOversight(rating)
            ),
        }
        for rating, title in rows
    ]
