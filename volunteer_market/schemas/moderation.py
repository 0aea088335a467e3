"""Schemas for comment moderation (reports, hide, unhide, dismiss) and call-backs (回访)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models.moderation import MODERATION_TEXT_MAX, CallbackOutcome, ReportStatus
from .common import ID_RANGE, PageArgs, StrictSchema, WholeNumber, trimmed


class ReasonIn(StrictSchema):
    """A report of a comment, or hiding it: the reason is required."""

    reason = trimmed(MODERATION_TEXT_MAX, required=True)


class OptionalReasonIn(StrictSchema):
    """Unhiding a comment, dismissing a report: the reason is optional."""

    reason = trimmed(MODERATION_TEXT_MAX, min_len=0, load_default=None, allow_none=True)


class ReportsQuery(PageArgs):
    community_id = WholeNumber(required=True, validate=ID_RANGE)
    #: ``open`` (the queue, default), ``hidden``, ``dismissed`` or ``all``.
    status = fields.String(
        load_default=ReportStatus.OPEN.value,
        validate=validate.OneOf([*(s.value for s in ReportStatus), "all"]),
    )


class ReportOut(Schema):
    """A report as its reporter gets it back after filing."""

    id = fields.Integer()
    rating_id = fields.Integer()
    community_id = fields.Integer()
    reason = fields.String()
    status = fields.Function(lambda r: r.status.value)
    created_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)
    resolution_reason = fields.String(allow_none=True)


class QueueReportOut(Schema):
    """A report in the secretary's queue, with the comment it is about."""

    id = fields.Integer()
    rating_id = fields.Integer()
    delivery_id = fields.Integer()
    project_id = fields.Integer()
    project_title = fields.String()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    comment_hidden = fields.Boolean()
    comment_hidden_reason = fields.String(allow_none=True)
    reporter_id = fields.Integer()
    reporter_name = fields.String()
    reason = fields.String()
    status = fields.String()
    created_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)
    resolution_reason = fields.String(allow_none=True)
    #: The caller may hide the comment or dismiss the report (not a party to it).
    can_decide = fields.Boolean()


class ModeratedOut(Schema):
    """A rating's comment state after hide/unhide (the secretary's view)."""

    rating_id = fields.Integer(attribute="id")
    delivery_id = fields.Integer()
    comment = fields.String(allow_none=True)
    comment_hidden = fields.Function(lambda r: r.comment_hidden_at is not None)
    comment_hidden_at = fields.DateTime(allow_none=True)
    comment_hidden_reason = fields.String(allow_none=True)


class CallbackIn(StrictSchema):
    outcome = fields.String(
        required=True, validate=validate.OneOf([o.value for o in CallbackOutcome])
    )
    #: What the resident said; required for ``disputed``.
    note = trimmed(MODERATION_TEXT_MAX, min_len=0, load_default=None, allow_none=True)


class CallbacksQuery(StrictSchema):
    community_id = WholeNumber(required=True, validate=ID_RANGE)


class CallbackOut(Schema):
    id = fields.Integer()
    rating_id = fields.Integer()
    outcome = fields.String()
    note = fields.String(allow_none=True)
    caller_id = fields.Integer()
    caller_name = fields.String()
    created_at = fields.DateTime()


class SampleItemOut(Schema):
    rating_id = fields.Integer()
    delivery_id = fields.Integer()
    project_title = fields.String()
    started_at = fields.DateTime()
    score = fields.Integer()
    rated_at = fields.DateTime()
    resident_id = fields.Integer()
    resident_name = fields.String()
    #: In full to the community's secretary (``user.view_personal``), masked otherwise.
    resident_phone = fields.String(allow_none=True)
    entered_by_id = fields.Integer()
    entered_by_name = fields.String()
    #: Call-backs recorded so far (``unreachable`` attempts).
    attempts = fields.Integer()
    can_record = fields.Boolean()


class CallbacksOut(Schema):
    community_id = fields.Integer()
    since = fields.DateTime()
    sample = fields.List(fields.Nested(SampleItemOut))
    recorded = fields.List(fields.Nested(CallbackOut))
