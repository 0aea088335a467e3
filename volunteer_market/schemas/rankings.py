"""Schemas for rankings: the query, member/team/community tables, the exposure setting."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from ..models.rankings import MAX_PER_PAGE, MAX_TOP_N, PERIOD_RE, Exposure
from .common import MAX_ID, StrictSchema


def _period(value: str) -> None:
    if not PERIOD_RE.match(value):
        raise ValidationError("Use all, a year (2026), a quarter (2026-Q4) or a month (2026-11).")


class RankingQuery(StrictSchema):
    #: Defaults to the caller's first community.
    area_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    period = fields.String(load_default="all", validate=_period)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class ScopeOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()


class RankingItemOut(Schema):
    #: Standard competition rank (1, 2, 2, 4); null in tiers mode.
    rank = fields.Integer(allow_none=True)
    user_id = fields.Integer()
    display_name = fields.String()
    points = fields.Integer(allow_none=True)
    hours = fields.Float(allow_none=True)
    #: gold / silver / bronze in tiers mode, else null.
    tier = fields.String(allow_none=True)


class RankingMeOut(Schema):
    rank = fields.Integer()
    points = fields.Integer()
    hours = fields.Float()
    tier = fields.String(allow_none=True)


class TiersOut(Schema):
    gold = fields.Integer()
    silver = fields.Integer()
    bronze = fields.Integer()


class ExposureOut(Schema):
    #: What this caller sees: full, top_n or tiers.
    mode = fields.String()
    #: The area's setting (secretaries and officers always get ``full``).
    configured = fields.String()
    top_n = fields.Integer(allow_none=True)
    tiers = fields.Nested(TiersOut, allow_none=True)


class RankingOut(Schema):
    area = fields.Nested(ScopeOut)
    period = fields.String()
    items = fields.List(fields.Nested(RankingItemOut))
    me = fields.Nested(RankingMeOut, allow_none=True)
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    exposure = fields.Nested(ExposureOut)


class TableQuery(StrictSchema):
    area_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    period = fields.String(load_default="all", validate=_period)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class TeamItemOut(Schema):
    rank = fields.Integer()
    project_id = fields.Integer()
    title = fields.String()
    community_id = fields.Integer()
    points = fields.Integer()
    hours = fields.Float()


class TeamRankingOut(Schema):
    area = fields.Nested(ScopeOut)
    period = fields.String()
    items = fields.List(fields.Nested(TeamItemOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class CommunityRowOut(Schema):
    community_id = fields.Integer()
    name = fields.String()
    members = fields.Integer()
    active_members = fields.Integer()
    #: Share of members active (with points) in the period, 0..1.
    participation_rate = fields.Float()
    points = fields.Integer()
    hours = fields.Float()
    points_per_active_member = fields.Float()
    hours_per_active_member = fields.Float()


class CommunityTableOut(Schema):
    area = fields.Nested(ScopeOut)
    period = fields.String()
    items = fields.List(fields.Nested(CommunityRowOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class ExposureIn(StrictSchema):
    exposure = fields.String(required=True, validate=validate.OneOf([e.value for e in Exposure]))
    top_n = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_TOP_N))
    gold_pct = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    silver_pct = fields.Integer(load_default=30, validate=validate.Range(min=1, max=100))
    bronze_pct = fields.Integer(load_default=60, validate=validate.Range(min=1, max=100))


class ExposureSettingOut(Schema):
    area_id = fields.Integer()
    exposure = fields.String()
    top_n = fields.Integer(allow_none=True)
    gold_pct = fields.Integer()
    silver_pct = fields.Integer()
    bronze_pct = fields.Integer()
