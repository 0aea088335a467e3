"""Schemas for ratings, replies, rating codes and settlement.

Input schemas are strict (unknown fields -> 422). A score is a JSON integer 1..5:
``"5"``, ``4.5``, ``true`` and ``null`` are refused (pages turn their form strings
into integers before loading). ``confirm_unrated`` is a JSON boolean.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..models.ratings import COMMENT_MAX
from .common import ID_RANGE, PageArgs, StrictSchema, trimmed


class StrictInteger(fields.Integer):
    """A JSON integer: never a string, a fraction or a bool."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON boolean: ``true`` or ``false`` only."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _score(**kw: Any) -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=1, max=5), **kw)


def _comment() -> fields.String:
    return trimmed(COMMENT_MAX, min_len=0, load_default=None, allow_none=True)


class RatingIn(StrictSchema):
    score = _score(required=True)
    comment = _comment()
    #: A grid worker or the secretary rates for this beneficiary (a proxy rating).
    on_behalf_of = StrictInteger(load_default=None, allow_none=True, validate=ID_RANGE)


class RatingPatchIn(StrictSchema):
    score = _score()
    comment = trimmed(COMMENT_MAX, min_len=0, allow_none=True)

    @validates_schema
    def _something(self, data: dict[str, Any], **_kw: Any) -> None:
        if not data:
            raise ValidationError("Give a score or a comment.", "score")


class ReplyIn(StrictSchema):
    text = trimmed(COMMENT_MAX, required=True)


class ByCodeIn(StrictSchema):
    """Either the six-digit ``code`` or the QR ``token``, with the score."""

    code = fields.String(validate=validate.Regexp(r"^\d{6}$", error="Six digits."))
    token = fields.String(validate=validate.Length(min=16, max=128))
    score = _score(required=True)
    comment = _comment()

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_kw: Any) -> None:
        if ("code" in data) == ("token" in data):
            raise ValidationError("Give either the six-digit code or the QR token.", "code")


class SettleIn(StrictSchema):
    confirm_unrated = StrictBoolean(load_default=False)


class ReplyOut(Schema):
    member_id = fields.Integer()
    display_name = fields.String()
    text = fields.String()
    created_at = fields.DateTime()


class RatingOut(Schema):
    """A rating as the caller may see it: identities only for the secretary/officers."""

    id = fields.Integer()
    delivery_id = fields.Integer()
    score = fields.Integer()
    #: ``null`` when hidden by the secretary (``comment_hidden``), except to the
    #: community's secretary, who also gets ``comment_hidden_reason``.
    comment = fields.String(allow_none=True)
    comment_hidden = fields.Boolean()
    comment_hidden_reason = fields.String()
    mine = fields.Boolean()
    can_reply = fields.Boolean()
    can_change = fields.Boolean()
    #: A participant may report the comment (once); the secretary may hide/unhide it.
    can_report = fields.Boolean()
    can_moderate = fields.Boolean()
    replies = fields.List(fields.Nested(ReplyOut))
    # The rater's own rating and the secretary's view only:
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    is_proxy = fields.Boolean()
    via_code = fields.Boolean()
    # The secretary's and officers' view only:
    beneficiary_id = fields.Integer()
    beneficiary_name = fields.String()
    entered_by_id = fields.Integer()
    entered_by_name = fields.String()
    # After POST/PATCH: the delivery's status (``settled`` when this rating completed it).
    delivery_status = fields.String()


class PendingOut(Schema):
    user_id = fields.Integer()
    display_name = fields.String()


class PendingRatingOut(Schema):
    """A delivery the caller received and may still rate from their own session."""

    delivery_id = fields.Integer()
    project_title = fields.String()
    started_at = fields.DateTime()
    rate_until = fields.DateTime()


class PendingRatingsOut(Schema):
    items = fields.List(fields.Nested(PendingRatingOut))


class DeliveryRatingsOut(Schema):
    delivery_id = fields.Integer()
    status = fields.String()
    rating_deadline = fields.DateTime()
    window_open = fields.Boolean()
    ratings_count = fields.Integer()
    beneficiaries_count = fields.Integer()
    average_score = fields.Float(allow_none=True)
    identities_visible = fields.Boolean()
    can_rate = fields.Boolean()
    can_proxy = fields.Boolean()
    can_settle = fields.Boolean()
    items = fields.List(fields.Nested(RatingOut))
    #: Beneficiaries who have not rated yet (proxy staff and the secretary only).
    pending = fields.List(fields.Nested(PendingOut))


class ByCodeOut(Schema):
    status = fields.String()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    delivery_status = fields.String()


class PostingOut(Schema):
    user_id = fields.Integer()
    points = fields.Integer()
    minutes = fields.Integer()
    counted_minutes = fields.Integer()
    transaction_id = fields.Integer(allow_none=True)


class SettlementOut(Schema):
    status = fields.String()
    delivery_id = fields.Integer()
    settlement_id = fields.Integer()
    postings = fields.List(fields.Nested(PostingOut))
    ratings_count = fields.Integer()
    average_score = fields.Float(allow_none=True)
    multiplier = fields.Float()
    confirmed_unrated = fields.Boolean()
    policy_id = fields.Integer()
    policy_version = fields.Integer()
    total_points = fields.Integer()
    total_minutes = fields.Integer()
    automatic = fields.Boolean()
    settled_by_id = fields.Integer(allow_none=True)
    settled_at = fields.DateTime()


class QueueQuery(PageArgs):
    community_id = fields.Integer(validate=ID_RANGE)


class QueueItemOut(Schema):
    delivery_id = fields.Integer()
    project_id = fields.Integer()
    title = fields.String()
    community_id = fields.Integer()
    started_at = fields.DateTime()
    ended_at = fields.DateTime()
    rating_deadline = fields.DateTime()
    window_open = fields.Boolean()
    ratings_count = fields.Integer()
    beneficiaries_count = fields.Integer()
    #: The secretary may settle now (the window has closed).
    settleable = fields.Boolean()
    #: Nobody rated: settling needs ``confirm_unrated: true``.
    needs_confirmation = fields.Boolean()


class QueuePageOut(Schema):
    items = fields.List(fields.Nested(QueueItemOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
