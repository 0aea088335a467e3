"""Schemas of the audit log viewer (``GET /api/v1/audit`` and the ``/audit`` page)."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .common import ID_RANGE, PageArgs, WholeNumber

#: The dates a filter accepts (a later one would overflow the day after it).
DATE_RANGE = validate.Range(min=date(2000, 1, 1), max=date(2999, 12, 31))


class AuditQuery(PageArgs):
    area_id = WholeNumber(validate=ID_RANGE)
    object_type = fields.String(
        validate=[validate.Length(min=1, max=32), validate.Regexp(r"^[a-z_]+$")]
    )
    object_id = WholeNumber(validate=ID_RANGE)
    actor_id = WholeNumber(validate=ID_RANGE)
    since = fields.Date(validate=DATE_RANGE)
    until = fields.Date(validate=DATE_RANGE)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("The start date is after the end date.", "until")


class AuditEntryOut(Schema):
    id = fields.Integer()
    created_at = fields.DateTime()
    actor_id = fields.Integer(allow_none=True)
    actor_name = fields.String(allow_none=True)
    action = fields.String()
    object_type = fields.String()
    object_id = fields.Integer(allow_none=True)
    area_id = fields.Integer(allow_none=True)
    area_name = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True)
    origin = fields.String(allow_none=True)
