"""Schemas for appeals (申诉): file, decide, read, list."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..models.appeals import APPEAL_TEXT_MAX
from ..models.ledger import MAX_ADJUSTMENT
from .common import ID_RANGE, PageArgs, StrictSchema, WholeNumber, trimmed


class AppealIn(StrictSchema):
    rating_id = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)
    transaction_id = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)
    reason = trimmed(APPEAL_TEXT_MAX, required=True)

    @validates_schema
    def _one_subject(self, data: dict[str, Any], **_kw: Any) -> None:
        if (data.get("rating_id") is None) == (data.get("transaction_id") is None):
            raise ValidationError("Give either rating_id or transaction_id.", "rating_id")


class DecideIn(StrictSchema):
    decision = fields.String(required=True, validate=validate.OneOf(["upheld", "dismissed"]))
    reason = trimmed(APPEAL_TEXT_MAX, required=True)
    amount = WholeNumber(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=-MAX_ADJUSTMENT, max=MAX_ADJUSTMENT),
    )


class AppealQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(["open", "upheld", "dismissed"]))
    community_id = fields.Integer(validate=ID_RANGE)


class AppealOut(Schema):
    id = fields.Integer()
    status = fields.Function(lambda a: a.status.value)
    community_id = fields.Integer()
    appellant_id = fields.Integer()
    rating_id = fields.Integer(allow_none=True)
    #: The appealed points award (the ``transaction_id`` given when filing).
    appealed_transaction_id = fields.Function(lambda a: a.transaction_id, allow_none=True)
    delivery_id = fields.Integer(allow_none=True)
    member_id = fields.Integer(allow_none=True)
    reason = fields.String()
    created_at = fields.DateTime()
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    #: The reversing or adjusting transaction an upheld appeal posted (API.md: the
    #: decision's result carries it as ``transaction_id``); None until then.
    transaction_id = fields.Function(lambda a: a.result_transaction_id, allow_none=True)
