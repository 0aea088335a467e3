"""Schemas for auth, users, role grants and areas."""

from __future__ import annotations

from marshmallow import fields, validate

from ..models import AreaKind, Role
from .common import ID_RANGE, StrictSchema, trimmed

USERNAME_RE = r"^[A-Za-z0-9_.\-]{3,64}$"
PHONE_RE = r"^\+?[0-9][0-9 \-]{5,20}$"


class TokenIn(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=256), load_only=True
    )


class RoleGrantOut(StrictSchema):
    id = fields.Integer()
    role = fields.String()
    area_id = fields.Integer(allow_none=True)


class UserOut(StrictSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    household_tags = fields.String(allow_none=True)
    home_unit = fields.String(allow_none=True)
    is_active = fields.Boolean()
    roles = fields.List(fields.Nested(RoleGrantOut))


class TokenOut(StrictSchema):
    token = fields.String()
    expires_at = fields.DateTime()
    user = fields.Nested(UserOut)


class PointsOut(StrictSchema):
    available = fields.Integer()
    held = fields.Integer()
    earned_total = fields.Integer()


class MeOut(StrictSchema):
    user = fields.Nested(UserOut)
    roles = fields.List(fields.Nested(RoleGrantOut))
    points = fields.Nested(PointsOut)


class UserIn(StrictSchema):
    username = fields.String(required=True, validate=validate.Regexp(USERNAME_RE))
    password = fields.String(
        required=True, validate=validate.Length(min=8, max=256), load_only=True
    )
    display_name = trimmed(100, required=True)
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(PHONE_RE))
    address = trimmed(255, load_default=None, allow_none=True)
    household_tags = trimmed(255, load_default=None, allow_none=True)
    home_unit = trimmed(255, load_default=None, allow_none=True)


class RoleGrantIn(StrictSchema):
    role = fields.Enum(Role, by_value=True, required=True)
    area_id = fields.Integer(load_default=None, allow_none=True, validate=ID_RANGE)


class AreaIn(StrictSchema):
    name = trimmed(100, required=True)
    kind = fields.Enum(AreaKind, by_value=True, required=True)
    parent_id = fields.Integer(load_default=None, allow_none=True, validate=ID_RANGE)


class AreaOut(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    parent_id = fields.Integer(allow_none=True)
    path = fields.String()
    depth = fields.Integer()


class AreaQuery(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))
    parent_id = fields.Integer(validate=ID_RANGE)
    kind = fields.Enum(AreaKind, by_value=True)
    under = fields.Integer(validate=ID_RANGE)
