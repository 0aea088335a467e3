"""Schemas for the annual report and the annual evaluation (年度考核, 公示)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models.evaluations import MAX_NOTICE_DAYS, MAX_OBJECTION_TEXT, MIN_NOTICE_DAYS, MIN_YEAR
from ..models.ledger import MAX_ADJUSTMENT
from ..models.rankings import MAX_PER_PAGE
from .common import MAX_ID, StrictSchema, trimmed

FORMATS = ("json", "csv", "xlsx")
YEAR_RANGE = validate.Range(min=MIN_YEAR, max=9999)


class AnnualReportQuery(StrictSchema):
    area_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    year = fields.Integer(required=True, validate=YEAR_RANGE)
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class AnnualRowOut(Schema):
    user_id = fields.Integer()
    #: Absent for members and residents reading a published list.
    username = fields.String()
    display_name = fields.String()
    #: 工作单位 (empty when unknown).
    home_unit = fields.String()
    community_id = fields.Integer()
    hours = fields.Float()
    deliveries = fields.Integer()
    projects_led = fields.Integer()
    projects_joined = fields.Integer()
    #: Mean of the ratings of the member's deliveries that year; null without ratings.
    average_score = fields.Float(allow_none=True)
    points_earned = fields.Integer()
    points_spent = fields.Integer()
    points_expired = fields.Integer()
    #: Standard competition rank by points earned; null without points or when excluded.
    rank_community = fields.Integer(allow_none=True)
    rank_street = fields.Integer(allow_none=True)


class AnnualReportOut(Schema):
    area_id = fields.Integer()
    year = fields.Integer()
    items = fields.List(fields.Nested(AnnualRowOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class EvaluationIn(StrictSchema):
    community_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    year = fields.Integer(required=True, validate=YEAR_RANGE)


class PublishIn(StrictSchema):
    notice_days = fields.Integer(
        load_default=None,
        validate=validate.Range(min=MIN_NOTICE_DAYS, max=MAX_NOTICE_DAYS),
    )


class ObjectionIn(StrictSchema):
    text = trimmed(MAX_OBJECTION_TEXT, required=True)
    user_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))


class AnswerIn(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(("upheld", "dismissed")))
    answer = trimmed(MAX_OBJECTION_TEXT, required=True)
    amount = fields.Integer(
        load_default=None, validate=validate.Range(min=-MAX_ADJUSTMENT, max=MAX_ADJUSTMENT)
    )


class EvaluationQuery(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class EvaluationRowOut(AnnualRowOut):
    #: Points of upheld objections already included in ``points_earned``.
    correction = fields.Integer()


class ObjectionOut(Schema):
    id = fields.Integer()
    evaluation_id = fields.Integer()
    filed_by_id = fields.Integer()
    user_id = fields.Integer(allow_none=True)
    text = fields.String()
    status = fields.String()
    answer = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    transaction_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)


class EvaluationOut(Schema):
    id = fields.Integer()
    community_id = fields.Integer()
    year = fields.Integer()
    status = fields.String()
    closed_at = fields.DateTime()
    notice_days = fields.Integer(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    notice_ends_at = fields.DateTime(allow_none=True)
    finalized_at = fields.DateTime(allow_none=True)
    #: Frozen rows; for members and residents: names and figures only (no username,
    #: no home unit).
    rows = fields.List(fields.Nested(EvaluationRowOut))
    #: Objections (the secretary and officers only; empty for others).
    objections = fields.List(fields.Nested(ObjectionOut))


class CertificateQuery(StrictSchema):
    year = fields.Integer(required=True, validate=YEAR_RANGE)
    #: Defaults to the member's first community the caller may see.
    community_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))


class ComparisonQuery(StrictSchema):
    area_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    year = fields.Integer(required=True, validate=YEAR_RANGE)
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class ComparisonRowOut(Schema):
    community_id = fields.Integer()
    name = fields.String()
    #: Members now (active member grants).
    members = fields.Integer()
    #: Members with points earned in the year.
    active_members = fields.Integer()
    participation_rate = fields.Float()
    points = fields.Integer()
    hours = fields.Float()
    points_per_active_member = fields.Float()
    hours_per_active_member = fields.Float()


class ComparisonOut(Schema):
    area_id = fields.Integer()
    year = fields.Integer()
    items = fields.List(fields.Nested(ComparisonRowOut))
