"""Schemas of self-registration (``/api/v1/registrations``, 在职党员到社区报到)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models import MAX_REJECT_REASON, RegistrationStatus, Role
from .accounts import Phone, password_field
from .common import ID_RANGE, StrictSchema, trimmed

ROLE_MESSAGE = "Register as a member or a resident."


class RegistrationIn(StrictSchema):
    phone = Phone(required=True)
    display_name = trimmed(100, required=True)
    password = password_field()
    community_id = fields.Integer(required=True, validate=ID_RANGE)
    role = fields.Enum(
        Role,
        by_value=True,
        required=True,
        validate=validate.OneOf([Role.MEMBER, Role.RESIDENT], error=ROLE_MESSAGE),
    )
    home_unit = trimmed(255, load_default=None, allow_none=True)


class RegistrationRejectIn(StrictSchema):
    reason = trimmed(MAX_REJECT_REASON, required=True)


class RegistrationQuery(StrictSchema):
    status = fields.Enum(RegistrationStatus, by_value=True)
    community_id = fields.Integer(validate=ID_RANGE)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class RegistrationOut(Schema):
    id = fields.Integer()
    status = fields.String()
    phone = fields.String()
    display_name = fields.String()
    community_id = fields.Integer()
    role = fields.String()
    home_unit = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    user_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)


class RegistrationCreatedOut(RegistrationOut):
    #: The applicant's status link token (``/register/<token>`` shows the outcome).
    status_token = fields.String()
