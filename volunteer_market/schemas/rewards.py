"""Schemas for rewards, redemptions, stock changes and the wallet.

Input schemas are strict: ``status``, ``stock_reserved``, ``member_id``, ``total`` ...
are never accepted from a client (422 unknown field).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..models import LimitPeriod, RedemptionStatus
from ..models.rewards import (
    DESCRIPTION_MAX,
    MAX_COST,
    MAX_LIMIT,
    MAX_QUANTITY,
    MAX_REASON,
    MAX_STOCK,
    NAME_MAX,
    NOTE_MAX,
    SPONSOR_MAX,
)
from .common import ID_RANGE, PageArgs, StrictSchema, trimmed


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, fractions and numeric strings."""

    def __init__(self, **kw: Any):
        super().__init__(strict=True, **kw)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class _RewardFields(StrictSchema):
    name = trimmed(NAME_MAX)
    description = trimmed(DESCRIPTION_MAX, min_len=0)
    cost = StrictInteger(validate=validate.Range(min=1, max=MAX_COST))
    #: null: unlimited.
    stock = StrictInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_STOCK))
    per_member_limit = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=MAX_LIMIT))
    limit_period = fields.Enum(LimitPeriod, by_value=True)
    sponsor = trimmed(SPONSOR_MAX, min_len=0, allow_none=True)
    active_from = fields.AwareDateTime(allow_none=True)
    active_to = fields.AwareDateTime(allow_none=True)
    is_active = fields.Boolean()

    @validates_schema
    def _window(self, data: dict[str, Any], **_kw: Any) -> None:
        start, end = data.get("active_from"), data.get("active_to")
        if start is not None and end is not None and end <= start:
            raise ValidationError("Must be after active_from.", "active_to")


class RewardIn(_RewardFields):
    area_id = StrictInteger(required=True, validate=ID_RANGE)
    name = trimmed(NAME_MAX, required=True)
    cost = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_COST))


class RewardPatchIn(_RewardFields):
    #: Optional note kept with a stock change (e.g. "补货 20 张").
    stock_note = trimmed(NOTE_MAX, min_len=0)


class RewardQuery(PageArgs):
    #: true: the rewards I manage (including paused, closed and retired ones).
    manage = fields.Boolean(load_default=False)


class RewardOut(Schema):
    id = fields.Integer()
    area_id = fields.Integer()
    area_name = fields.Function(lambda r: r.area.name)
    name = fields.String()
    description = fields.String()
    image_url = fields.Function(lambda r: f"/api/v1/rewards/{r.id}/image" if r.image_path else None)
    cost = fields.Integer()
    #: null: unlimited.
    stock = fields.Integer(allow_none=True)
    per_member_limit = fields.Integer(allow_none=True)
    limit_period = fields.Function(lambda r: r.limit_period.value)
    sponsor = fields.String(allow_none=True)
    active_from = fields.DateTime(allow_none=True)
    active_to = fields.DateTime(allow_none=True)
    is_active = fields.Boolean()
    retired = fields.Function(lambda r: r.retired_at is not None)
    retired_at = fields.DateTime(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class RedemptionIn(StrictSchema):
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


class FulfilIn(StrictSchema):
    pickup_code = fields.String(required=True, validate=validate.Length(min=1, max=32))


class CancelIn(StrictSchema):
    reason = trimmed(MAX_REASON, min_len=0, allow_none=True)


class RejectIn(StrictSchema):
    reason = trimmed(MAX_REASON, required=True)


class RedemptionQuery(PageArgs):
    #: true: only my own redemptions.
    mine = fields.Boolean(load_default=False)
    status = fields.Enum(RedemptionStatus, by_value=True)
    reward_id = fields.Integer(validate=ID_RANGE)
    community_id = fields.Integer(validate=ID_RANGE)


class RedemptionOut(Schema):
    id = fields.Integer()
    reward_id = fields.Integer()
    reward_name = fields.String()
    sponsor = fields.String(allow_none=True)
    member_id = fields.Integer()
    member_name = fields.String()
    community_id = fields.Integer()
    quantity = fields.Integer()
    cost_each = fields.Integer()
    total = fields.Integer()
    status = fields.String()
    expires_at = fields.DateTime()
    reason = fields.String(allow_none=True)
    decided_by_id = fields.Integer(allow_none=True)
    hold_transaction_id = fields.Integer()
    final_transaction_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    #: Only for the member, while held.
    pickup_code = fields.String(allow_none=True)


class RedemptionCreatedOut(RedemptionOut):
    #: The fulfilment page with the code filled in (what the QR code holds).
    pickup_url = fields.String()
    pickup_qr_svg = fields.String()


class StockChangeOut(Schema):
    id = fields.Integer()
    kind = fields.Function(lambda c: c.kind.value)
    delta = fields.Integer(allow_none=True)
    stock_before = fields.Integer(allow_none=True)
    stock_after = fields.Integer(allow_none=True)
    redemption_id = fields.Integer(allow_none=True)
    actor_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    created_at = fields.DateTime()


class ExpiringOut(Schema):
    amount = fields.Integer()
    expires_on = fields.Date()


class WalletOut(Schema):
    available = fields.Integer()
    held = fields.Integer()
    earned_total = fields.Integer()
    #: Wallet points that expire at the end of this year (null: the policy never expires them).
    expiring = fields.Nested(ExpiringOut, allow_none=True)
