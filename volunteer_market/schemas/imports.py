"""Schemas of bulk imports (``/api/v1/imports``)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models import ImportKind
from .common import ID_RANGE, StrictSchema


class ImportIn(StrictSchema):
    """The form fields of the upload (the file itself is the multipart field ``file``)."""

    kind = fields.Enum(ImportKind, by_value=True, required=True)
    community_id = fields.Integer(required=True, validate=ID_RANGE)
    dry_run = fields.Boolean(load_default=False)


class TemplateQuery(StrictSchema):
    kind = fields.Enum(ImportKind, by_value=True, required=True)
    format = fields.String(load_default="xlsx", validate=validate.OneOf(["xlsx", "csv"]))


class ImportErrorOut(Schema):
    row = fields.Integer()
    field = fields.String()
    message = fields.String()


class ImportOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    community_id = fields.Integer()
    status = fields.String()
    dry_run = fields.Boolean()
    filename = fields.String()
    total = fields.Integer()
    done = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    refused = fields.Integer()
    errors = fields.List(fields.Nested(ImportErrorOut))
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
