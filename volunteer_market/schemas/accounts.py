"""Schemas for auth, users, role grants and areas."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate

from ..models import AreaKind, Role
from ..models.users import normalize_phone
from .common import ID_RANGE, StrictSchema, trimmed

#: Letters of any script (Chinese names too), digits, ``_ . -``.
_USERNAME_CHARS = re.compile(r"^[\w.\-]+$")
USERNAME_MESSAGE = (
    "Use 3 to 64 letters, Chinese characters, digits, _ . or - "
    "(a Chinese name may have 2); not only digits."
)
PHONE_MESSAGE = "Not a valid mobile phone number (11 digits, e.g. 13812345678)."
PASSWORD_MESSAGE = "At least 8 characters."  # noqa: S105  (a message)


def validate_username(value: str) -> None:
    """Refuse a username that is not 3-64 word characters (2 if not all ASCII), or digits
    only (a digits-only name could be someone else's phone number at the login form)."""
    short_ok = len(value) == 2 and not value.isascii()
    if (
        not _USERNAME_CHARS.match(value)
        or not (3 <= len(value) <= 64 or short_ok)
        or value.isdigit()
    ):
        raise ValidationError(USERNAME_MESSAGE)


class Phone(fields.String):
    """A mainland mobile number, stored as 11 digits (spaces, dashes, +86 accepted)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        phone = normalize_phone(text)
        if phone is None:
            raise ValidationError(PHONE_MESSAGE)
        return phone


def password_field(**kw: Any) -> fields.String:
    """Return a new-password field (8 to 256 characters, never dumped)."""
    return fields.String(
        required=True,
        validate=validate.Length(min=8, max=256, error=PASSWORD_MESSAGE),
        load_only=True,
        **kw,
    )


class TokenIn(StrictSchema):
    #: A username or a phone number.
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
    must_change_password = fields.Boolean()
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
    username = fields.String(required=True, validate=validate_username)
    password = password_field()
    display_name = trimmed(100, required=True)
    phone = Phone(load_default=None, allow_none=True)
    address = trimmed(255, load_default=None, allow_none=True)
    household_tags = trimmed(255, load_default=None, allow_none=True)
    home_unit = trimmed(255, load_default=None, allow_none=True)


class PasswordResetIn(StrictSchema):
    """A secretary's or admin's new password for someone (changed at their next login)."""

    password = password_field()


class PasswordChangeIn(StrictSchema):
    old_password = fields.String(
        required=True, validate=validate.Length(min=1, max=256), load_only=True
    )
    new_password = password_field()


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
