"""Schemas for project sessions: schedule, list with counts, sign-up, attendance, delivery."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..models import MAX_SLOTS, PLACE_MAX
from .common import ID_RANGE, StrictSchema, WholeNumber, trimmed


class SessionIn(StrictSchema):
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    place = trimmed(PLACE_MAX, required=True)
    slots = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_SLOTS))


class SessionOut(Schema):
    """A session (from a ``SessionView``) with its counts and the caller's own status."""

    id = fields.Function(lambda v: v.session.id)
    project_id = fields.Function(lambda v: v.session.project_id)
    community_id = fields.Function(lambda v: v.session.community_id)
    starts_at = fields.Function(lambda v: v.session.starts_at.isoformat())
    ends_at = fields.Function(lambda v: v.session.ends_at.isoformat())
    place = fields.Function(lambda v: v.session.place)
    slots = fields.Function(lambda v: v.session.slots)
    status = fields.Function(lambda v: v.session.status.value)
    delivery_id = fields.Function(lambda v: v.session.delivery_id, allow_none=True)
    signed_up = fields.Integer()
    waitlisted = fields.Integer()
    #: ``signed_up``, ``waitlisted`` or null (the caller holds no sign-up).
    my_status = fields.String(allow_none=True)


class SessionListOut(Schema):
    items = fields.List(fields.Nested(SessionOut))


class SignupOut(Schema):
    session_id = fields.Integer()
    user_id = fields.Integer()
    status = fields.String()
    queued_at = fields.DateTime()


class AttendanceIn(StrictSchema):
    """Either the code shown at the venue (a member for themself) or, for the owner, the
    member's ``user_id``."""

    code = fields.String(validate=validate.Regexp(r"^ *[0-9]{6} *$"), load_default=None)
    user_id = WholeNumber(validate=ID_RANGE, load_default=None)


class AttendanceOut(Schema):
    session_id = fields.Integer()
    user_id = fields.Integer()
    display_name = fields.Function(lambda a: a.user.display_name)
    checked_in_at = fields.DateTime()
    checked_out_at = fields.DateTime(allow_none=True)
    marked = fields.Function(lambda a: a.marked_by_id is not None)


class AttendanceRowOut(Schema):
    user_id = fields.Integer()
    display_name = fields.String()
    status = fields.String()
    checked_in_at = fields.DateTime(allow_none=True)
    checked_out_at = fields.DateTime(allow_none=True)
    marked = fields.Boolean()


class AttendanceListOut(Schema):
    items = fields.List(fields.Nested(AttendanceRowOut))


class CheckInCodeOut(Schema):
    code = fields.String()
    valid_until = fields.DateTime()
    qr_svg = fields.String()


class SessionDeliveryIn(StrictSchema):
    beneficiaries = fields.List(
        WholeNumber(validate=ID_RANGE), required=True, validate=validate.Length(max=200)
    )
    need_id = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)


class CalendarLinkOut(Schema):
    url = fields.String()
