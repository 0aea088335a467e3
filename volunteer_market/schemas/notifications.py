"""Schemas for notifications: the in-app list, mark read; my channels; a community's
group-robot webhook."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models import MAX_EMAIL, MAX_WEBHOOK_URL, PERSON_CHANNELS
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


# --- channels outside the app (docs/notifications.md) -----------------------------------


class NotificationChannelsIn(StrictSchema):
    """My channels: ``in_app`` is always on (may be listed or not); ``email`` needs an
    address (given here or kept from before)."""

    channels = fields.List(
        fields.String(validate=validate.OneOf(PERSON_CHANNELS)),
        required=True,
        validate=validate.Length(max=len(PERSON_CHANNELS)),
    )
    email = fields.Email(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_EMAIL)
    )


class NotificationChannelsOut(Schema):
    channels = fields.List(fields.String())
    #: Only ever shown to its owner.
    email = fields.String(allow_none=True)
    email_available = fields.Boolean()


class CommunityWebhookIn(StrictSchema):
    """A community's 企业微信 group-robot URL; ``null`` or empty removes it."""

    url = fields.String(
        required=True, allow_none=True, validate=validate.Length(max=MAX_WEBHOOK_URL)
    )


class CommunityWebhookOut(Schema):
    community_id = fields.Integer()
    configured = fields.Boolean()
    #: Scheme, host and the last four characters: the URL itself is never returned.
    url_masked = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    #: Group messages of this community that gave up after the last attempt.
    failed_messages = fields.Integer()
