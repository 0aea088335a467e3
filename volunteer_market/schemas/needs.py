"""Schemas for needs: post, order a menu service, dispatch, list."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema

from ..models import Category, NeedStatus
from .common import (
    ID_RANGE,
    TEXT_MAX,
    TITLE_MAX,
    PageArgs,
    StrictSchema,
    UserBrief,
    WholeNumber,
    trimmed,
)


class NeedIn(StrictSchema):
    community_id = WholeNumber(required=True, validate=ID_RANGE)
    title = trimmed(TITLE_MAX, required=True)
    description = trimmed(TEXT_MAX, min_len=0, load_default="")
    category = fields.Enum(Category, by_value=True, required=True)
    on_behalf_of = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)


class OrderIn(StrictSchema):
    description = trimmed(TEXT_MAX, min_len=0, load_default="")


class DispatchIn(StrictSchema):
    project_id = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)
    member_id = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_kw: Any) -> None:
        if (data.get("project_id") is None) == (data.get("member_id") is None):
            raise ValidationError(["Give exactly one of project_id and member_id."], "_schema")


class NeedQuery(PageArgs):
    community_id = fields.Integer(validate=ID_RANGE)
    status = fields.Enum(NeedStatus, by_value=True)
    category = fields.Enum(Category, by_value=True)
    project_id = fields.Integer(validate=ID_RANGE)
    mine = fields.Boolean(load_default=False)


class NeedOut(Schema):
    id = fields.Integer()
    community_id = fields.Integer()
    grid_id = fields.Integer(allow_none=True)
    title = fields.String()
    description = fields.String()
    category = fields.Enum(Category, by_value=True)
    status = fields.Enum(NeedStatus, by_value=True)
    on_behalf = fields.Boolean()
    posted_by_id = fields.Integer()
    beneficiary_id = fields.Integer()
    beneficiary = fields.Nested(UserBrief)
    project_id = fields.Integer(allow_none=True)
    assignee_id = fields.Integer(allow_none=True)
    assignee = fields.Nested(UserBrief, allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
