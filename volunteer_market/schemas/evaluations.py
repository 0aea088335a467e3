"""Schemas for the annual report and the annual evaluation (年度考核, 公示)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models.evaluations import MIN_YEAR
from ..models.rankings import MAX_PER_PAGE
from .common import MAX_ID, StrictSchema

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
