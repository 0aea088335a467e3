"""Schemas for integrity signals."""

from __future__ import annotations

from marshmallow import Schema, fields

from .common import ID_RANGE, StrictSchema, WholeNumber


class SignalsQuery(StrictSchema):
    community_id = WholeNumber(required=True, validate=ID_RANGE)


class SignalOut(Schema):
    kind = fields.String()
    user_ids = fields.List(fields.Integer())
    delivery_ids = fields.List(fields.Integer())
    detail = fields.Dict()


class SignalsOut(Schema):
    community_id = fields.Integer()
    since = fields.DateTime()
    items = fields.List(fields.Nested(SignalOut))
    #: Each kind's number of signals before the cap (``items`` holds at most
    #: ``signal_cap`` of a kind, each with at most ``ids_cap`` delivery ids).
    totals = fields.Dict(keys=fields.String(), values=fields.Integer())
    signal_cap = fields.Integer()
    ids_cap = fields.Integer()
