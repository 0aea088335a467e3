"""Schemas for in-app notifications: list, mark read."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import ID_RANGE, PageArgs, StrictSchema, WholeNumber


class NotificationOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    object_type = fields.String(allow_none=True)
    object_id = fields.Integer(allow_none=True)
    params = fields.Dict(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)
    read = fields.Function(lambda n: n.read_at is not None)


class NotificationPageOut(Schema):
    items = fields.List(fields.Nested(NotificationOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    unread_count = fields.Integer()


class NotificationQuery(PageArgs):
    unread = fields.Boolean(load_default=False)


class MarkReadIn(StrictSchema):
    ids = fields.List(
        WholeNumber(validate=ID_RANGE),
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
    )


class UnreadOut(Schema):
    unread_count = fields.Integer()
    marked = fields.Integer()
