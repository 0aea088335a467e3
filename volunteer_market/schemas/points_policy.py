"""Schemas of a community's points policy (``/api/v1/communities/{id}/points-policy``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..models import ExpiryRule
from .common import StrictSchema, WholeNumber

#: Rows a multiplier table may have.
MAX_MULTIPLIER_ROWS = 10
#: The longest cap of one participant's hours in one delivery.
MAX_HOURS_CAP = 24


class PointsPolicyIn(StrictSchema):
    """The terms to change (the others stay as they are); at least one."""

    base_rate = WholeNumber(validate=validate.Range(min=0, max=1000))
    multipliers = fields.List(
        fields.Tuple(
            (
                fields.Float(validate=validate.Range(min=1, max=5)),
                fields.Float(validate=validate.Range(min=0, max=5)),
            )
        ),
        validate=validate.Length(min=1, max=MAX_MULTIPLIER_ROWS),
    )
    #: Hours of one participant in one delivery that count (stored as minutes).
    hours_cap = fields.Float(validate=validate.Range(min=0, max=MAX_HOURS_CAP, min_inclusive=False))
    expiry = fields.String(validate=validate.OneOf([r.value for r in ExpiryRule]))
    unrated_multiplier_percent = WholeNumber(validate=validate.Range(min=0, max=500))
    rating_window_days = WholeNumber(validate=validate.Range(min=1, max=90))
    redemption_hold_days = WholeNumber(validate=validate.Range(min=1, max=365))

    @validates_schema
    def _something(self, data: dict[str, Any], **_kw: Any) -> None:
        if not data:
            raise ValidationError("Give at least one term to change.")
        rows = data.get("multipliers")
        if rows:
            minimums = [row[0] for row in rows]
            if minimums != sorted(minimums, reverse=True) or len(set(minimums)) != len(rows):
                raise ValidationError(
                    "Minimum averages must decrease from row to row.", "multipliers"
                )

    @post_load
    def _as_terms(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        """Return the service's terms (``hours_cap_minutes``, ``expiry_rule``)."""
        if "hours_cap" in data:
            data["hours_cap_minutes"] = max(1, round(data.pop("hours_cap") * 60))
        if "expiry" in data:
            data["expiry_rule"] = data.pop("expiry")
        if "multipliers" in data:
            data["multipliers"] = [[t, m] for t, m in data["multipliers"]]
        return data


class PolicyChangeOut(Schema):
    term = fields.String()
    before = fields.Raw()
    after = fields.Raw()


class PointsPolicyOut(Schema):
    id = fields.Integer(allow_none=True)
    community_id = fields.Integer(allow_none=True)
    version = fields.Integer()
    base_rate = fields.Integer()
    multipliers = fields.List(fields.List(fields.Float()))
    hours_cap = fields.Method("_hours_cap")
    hours_cap_minutes = fields.Integer()
    expiry = fields.Method("_expiry")
    unrated_multiplier_percent = fields.Integer()
    rating_window_days = fields.Integer()
    redemption_hold_days = fields.Integer()
    created_at = fields.DateTime(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)

    def _hours_cap(self, policy: Any) -> float:
        return round(policy.hours_cap_minutes / 60, 2)

    def _expiry(self, policy: Any) -> str:
        return ExpiryRule(policy.expiry_rule).value


class CommunityPolicyOut(Schema):
    """The policy in force, whether it is the default, the version before, the changes."""

    community_id = fields.Integer()
    policy = fields.Nested(PointsPolicyOut)
    inherited = fields.Boolean()
    previous = fields.Nested(PointsPolicyOut, allow_none=True)
    changes = fields.List(fields.Nested(PolicyChangeOut))
