"""Schemas for the points ledger: transactions, a member's ledger, adjustments, reversals."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from ..models.ledger import MAX_ADJUSTMENT, MAX_REASON
from .accounts import PointsOut
from .common import ID_RANGE, StrictSchema, trimmed


def _non_zero(value: int) -> None:
    if value == 0:
        raise ValidationError("Must not be 0.")


class EntryOut(Schema):
    id = fields.Integer()
    account_id = fields.Integer()
    account_kind = fields.String()
    user_id = fields.Integer(allow_none=True)
    community_id = fields.Integer(allow_none=True)
    amount = fields.Integer()


class TransactionOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    member_id = fields.Integer(allow_none=True)
    community_id = fields.Integer(allow_none=True)
    delivery_id = fields.Integer(allow_none=True)
    redemption_id = fields.Integer(allow_none=True)
    reverses_id = fields.Integer(allow_none=True)
    reversed_by_id = fields.Integer(allow_none=True)
    minutes = fields.Integer(allow_none=True)
    policy_id = fields.Integer(allow_none=True)
    actor_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    hash = fields.String()
    #: The change this transaction made to the member's wallet and held points.
    available_change = fields.Integer()
    held_change = fields.Integer()
    entries = fields.List(fields.Nested(EntryOut))


class LedgerOut(Schema):
    balances = fields.Nested(PointsOut)
    items = fields.List(fields.Nested(TransactionOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class LedgerQuery(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class AdjustmentIn(StrictSchema):
    user_id = fields.Integer(strict=True, required=True, validate=ID_RANGE)
    amount = fields.Integer(
        strict=True,
        required=True,
        validate=[validate.Range(min=-MAX_ADJUSTMENT, max=MAX_ADJUSTMENT), _non_zero],
    )
    reason = trimmed(MAX_REASON, required=True)


class ReverseIn(StrictSchema):
    reason = trimmed(MAX_REASON, required=True)
