"""Schemas for deliveries (service sessions): record, read, list.

The API speaks hours; services work in whole minutes (participant ``minutes``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from .common import ID_RANGE, PageArgs, StrictSchema, WholeNumber, hours_to_minutes, positive_hours


class ParticipantIn(StrictSchema):
    user_id = WholeNumber(required=True, validate=ID_RANGE)
    hours = positive_hours(24)


class DeliveryIn(StrictSchema):
    project_id = WholeNumber(required=True, validate=ID_RANGE)
    started_at = fields.AwareDateTime(required=True)
    ended_at = fields.AwareDateTime(required=True)
    participants = fields.List(
        fields.Nested(ParticipantIn), required=True, validate=validate.Length(min=1, max=100)
    )
    beneficiaries = fields.List(
        WholeNumber(validate=ID_RANGE),
        load_default=list,
        validate=validate.Length(max=200),
    )
    no_shows = fields.List(
        WholeNumber(validate=ID_RANGE),
        load_default=list,
        validate=validate.Length(max=100),
    )
    need_id = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)

    @post_load
    def _minutes(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        data["participants"] = [
            (p["user_id"], hours_to_minutes(p["hours"])) for p in data["participants"]
        ]
        return data


class ParticipantOut(Schema):
    user_id = fields.Integer()
    display_name = fields.Function(lambda p: p.user.display_name)
    minutes = fields.Integer()
    hours = fields.Float()


class BeneficiaryOut(Schema):
    #: Whether a beneficiary has rated is deliberately not shown: participants could
    #: match scores to residents. Secretaries see it through the ratings API.
    user_id = fields.Integer()
    display_name = fields.Function(lambda b: b.user.display_name)


class RatingSlipOut(Schema):
    """One beneficiary's slip: the one-time code, the link and its QR code."""

    user_id = fields.Integer()
    display_name = fields.String()
    code = fields.String()
    url = fields.String()
    qr_svg = fields.String()


class RatingSlipsOut(Schema):
    delivery_id = fields.Integer()
    project_title = fields.String()
    started_at = fields.DateTime()
    rate_until = fields.DateTime()
    items = fields.List(fields.Nested(RatingSlipOut))


class RatingSlipsQuery(StrictSchema):
    #: Only this beneficiary's slip (a lost one); the others stay valid.
    user_id = WholeNumber(validate=ID_RANGE)


class DeliveryOut(Schema):
    id = fields.Integer()
    project_id = fields.Integer()
    community_id = fields.Integer()
    recorded_by_id = fields.Integer()
    started_at = fields.DateTime()
    ended_at = fields.DateTime()
    hours = fields.Function(lambda d: round(d.minutes / 60, 2))
    need_id = fields.Integer(allow_none=True)
    status = fields.String()
    rating_deadline = fields.DateTime()
    created_at = fields.DateTime()
    photo_url = fields.Function(
        lambda d: f"/api/v1/deliveries/{d.id}/photo" if d.photo_path else None, allow_none=True
    )
    participants = fields.List(fields.Nested(ParticipantOut))
    beneficiaries = fields.List(fields.Nested(BeneficiaryOut))
    no_shows = fields.Function(lambda d: [n.user_id for n in d.no_shows])


class DeliveryQuery(PageArgs):
    project_id = fields.Integer(validate=ID_RANGE)
    community_id = fields.Integer(validate=ID_RANGE)
