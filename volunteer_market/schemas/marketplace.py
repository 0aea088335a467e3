"""Schemas for projects, teams, needs, deliveries and notifications.

Input (``*In``) schemas are strict: unknown fields -- ``status``, ``owner_id``,
``team_size`` ... -- are rejected with 422, never silently stored. The API speaks
hours; services work in whole minutes (``planned_minutes``, participant ``minutes``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..models import MAX_CAPACITY, Category, NeedStatus, ProjectMode, ProjectStatus
from .common import ID_RANGE, PageArgs, StrictSchema, TrimmedString, trimmed

TITLE_MAX = 100
TEXT_MAX = 5000
TAG_MAX = 20
TAGS_MAX = 10
#: Upper bound of a project's planned hours (a standing menu service runs for long).
PLANNED_HOURS_MAX = 10000


class WholeNumber(fields.Integer):
    """An integer that also accepts form strings ("5") but never a fraction (5.5) or a bool."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid")
        return super()._validated(value)


def hours_to_minutes(hours: float) -> int:
    """Return whole minutes for ``hours`` (rounded to the nearest minute)."""
    return round(hours * 60)


def _tag_list() -> fields.List:
    return fields.List(
        TrimmedString(validate=validate.Length(min=1, max=TAG_MAX)),
        load_default=list,
        validate=validate.Length(max=TAGS_MAX),
    )


def _positive_hours(max_hours: float) -> fields.Float:
    return fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(min=0, max=max_hours, min_inclusive=False),
    )


class _ProjectFields(StrictSchema):
    title = trimmed(TITLE_MAX)
    description = trimmed(TEXT_MAX)
    category = fields.Enum(Category, by_value=True)
    mode = fields.Enum(ProjectMode, by_value=True)
    capacity = WholeNumber(validate=validate.Range(min=1, max=MAX_CAPACITY))
    planned_hours = fields.Float(
        allow_nan=False, validate=validate.Range(min=0, max=PLANNED_HOURS_MAX, min_inclusive=False)
    )
    starts_at = fields.AwareDateTime(allow_none=True)
    ends_at = fields.AwareDateTime(allow_none=True)
    skills = _tag_list()
    target_groups = _tag_list()

    @post_load
    def _minutes(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        if "planned_hours" in data:
            minutes = hours_to_minutes(data.pop("planned_hours"))
            if minutes < 1:
                raise ValidationError({"planned_hours": ["At least one minute."]})
            data["planned_minutes"] = minutes
        return data

    @validates_schema
    def _schedule(self, data: dict[str, Any], **_kw: Any) -> None:
        start, end = data.get("starts_at"), data.get("ends_at")
        if start is not None and end is not None and end <= start:
            raise ValidationError({"ends_at": ["Must be after starts_at."]})


class ProjectIn(_ProjectFields):
    """``POST /projects``: a new draft."""

    community_id = WholeNumber(required=True, validate=ID_RANGE)
    title = trimmed(TITLE_MAX, required=True)
    description = trimmed(TEXT_MAX, required=True)
    category = fields.Enum(Category, by_value=True, required=True)
    mode = fields.Enum(ProjectMode, by_value=True, required=True)
    capacity = WholeNumber(required=True, validate=validate.Range(min=1, max=MAX_CAPACITY))
    planned_hours = _positive_hours(PLANNED_HOURS_MAX)
    starts_at = fields.AwareDateTime(load_default=None, allow_none=True)
    ends_at = fields.AwareDateTime(load_default=None, allow_none=True)


class ProjectPatchIn(_ProjectFields):
    """``PATCH /projects/{id}``: any subset of the editable fields."""

    skills = fields.List(
        TrimmedString(validate=validate.Length(min=1, max=TAG_MAX)),
        validate=validate.Length(max=TAGS_MAX),
    )
    target_groups = fields.List(
        TrimmedString(validate=validate.Length(min=1, max=TAG_MAX)),
        validate=validate.Length(max=TAGS_MAX),
    )


class CommentIn(StrictSchema):
    comment = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class ReviewIn(CommentIn):
    decision = fields.String(
        required=True, validate=validate.OneOf(["approve", "reject", "request_changes"])
    )

    @validates_schema
    def _comment_required(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("decision") in ("reject", "request_changes") and not data.get("comment"):
            raise ValidationError({"comment": ["Required to reject or request changes."]})


class ProjectQuery(PageArgs):
    community_id = fields.Integer(validate=ID_RANGE)
    status = fields.Enum(ProjectStatus, by_value=True)
    category = fields.Enum(Category, by_value=True)
    mode = fields.Enum(ProjectMode, by_value=True)
    q = trimmed(TITLE_MAX)
    mine = fields.Boolean(load_default=False)


class SimilarQuery(StrictSchema):
    community_id = fields.Integer(required=True, validate=ID_RANGE)
    title = trimmed(TITLE_MAX, required=True)
    exclude_id = fields.Integer(validate=ID_RANGE)


class UserBrief(Schema):
    id = fields.Integer()
    display_name = fields.String()


class AreaBrief(Schema):
    id = fields.Integer()
    name = fields.String()


class ProjectOut(Schema):
    id = fields.Integer()
    community_id = fields.Integer()
    community = fields.Nested(AreaBrief)
    owner_id = fields.Integer()
    owner = fields.Nested(UserBrief)
    title = fields.String()
    description = fields.String()
    category = fields.Enum(Category, by_value=True)
    mode = fields.Enum(ProjectMode, by_value=True)
    capacity = fields.Integer()
    team_size = fields.Integer()
    planned_hours = fields.Float()
    starts_at = fields.DateTime(allow_none=True)
    ends_at = fields.DateTime(allow_none=True)
    skills = fields.List(fields.String())
    target_groups = fields.List(fields.String())
    cover_url = fields.Function(
        lambda p: f"/api/v1/projects/{p.id}/cover" if p.cover_path else None, allow_none=True
    )
    status = fields.Enum(ProjectStatus, by_value=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SimilarOut(Schema):
    id = fields.Integer()
    title = fields.String()
    status = fields.String()
    score = fields.Float()


class SimilarListOut(Schema):
    items = fields.List(fields.Nested(SimilarOut))


class TransitionOut(Schema):
    from_status = fields.String()
    to_status = fields.String()
    action = fields.String()
    actor = fields.Nested(UserBrief)
    comment = fields.String(allow_none=True)
    at = fields.DateTime()


class TransitionListOut(Schema):
    items = fields.List(fields.Nested(TransitionOut))


class TeamMemberOut(Schema):
    user_id = fields.Integer()
    status = fields.String()


class TeamEntryOut(TeamMemberOut):
    display_name = fields.String()
    role = fields.String()
    requested_at = fields.DateTime(allow_none=True)


class TeamOut(Schema):
    capacity = fields.Integer()
    team_size = fields.Integer()
    items = fields.List(fields.Nested(TeamEntryOut))


# --- needs ----------------------------------------------------------------------


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


# --- deliveries -----------------------------------------------------------------


class ParticipantIn(StrictSchema):
    user_id = WholeNumber(required=True, validate=ID_RANGE)
    hours = _positive_hours(24)


class DeliveryIn(StrictSchema):
    project_id = WholeNumber(required=True, validate=ID_RANGE)
    started_at = fields.AwareDateTime(required=True)
    ended_at = fields.AwareDateTime(required=True)
    participants = fields.List(
        fields.Nested(ParticipantIn), required=True, validate=validate.Length(min=1, max=100)
    )
    beneficiaries = fields.List(
        WholeNumber(validate=ID_RANGE),
        load_default=list,
        validate=validate.Length(max=200),
    )
    no_shows = fields.List(
        WholeNumber(validate=ID_RANGE),
        load_default=list,
        validate=validate.Length(max=100),
    )
    need_id = WholeNumber(load_default=None, allow_none=True, validate=ID_RANGE)

    @post_load
    def _minutes(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        data["participants"] = [
            (p["user_id"], hours_to_minutes(p["hours"])) for p in data["participants"]
        ]
        return data


class ParticipantOut(Schema):
    user_id = fields.Integer()
    display_name = fields.Function(lambda p: p.user.display_name)
    minutes = fields.Integer()
    hours = fields.Float()


class BeneficiaryOut(Schema):
    #: Whether a beneficiary has rated is deliberately not shown: participants could
    #: match scores to residents. Secretaries see it through the ratings API.
    user_id = fields.Integer()
    display_name = fields.Function(lambda b: b.user.display_name)


class RatingCodeOut(Schema):
    user_id = fields.Integer()
    display_name = fields.String()
    code = fields.String()
    url = fields.String()
    qr_svg = fields.String()


class DeliveryOut(Schema):
    id = fields.Integer()
    project_id = fields.Integer()
    community_id = fields.Integer()
    recorded_by_id = fields.Integer()
    started_at = fields.DateTime()
    ended_at = fields.DateTime()
    hours = fields.Function(lambda d: round(d.minutes / 60, 2))
    need_id = fields.Integer(allow_none=True)
    status = fields.String()
    rating_deadline = fields.DateTime()
    created_at = fields.DateTime()
    photo_url = fields.Function(
        lambda d: f"/api/v1/deliveries/{d.id}/photo" if d.photo_path else None, allow_none=True
    )
    participants = fields.List(fields.Nested(ParticipantOut))
    beneficiaries = fields.List(fields.Nested(BeneficiaryOut))
    no_shows = fields.Function(lambda d: [n.user_id for n in d.no_shows])


class DeliveryCreatedOut(DeliveryOut):
    rating_codes = fields.List(fields.Nested(RatingCodeOut))


class DeliveryQuery(PageArgs):
    project_id = fields.Integer(validate=ID_RANGE)
    community_id = fields.Integer(validate=ID_RANGE)


# --- notifications --------------------------------------------------------------


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
