"""Schemas for projects, their review and lifecycle history, and their teams.

Input (``*In``) schemas are strict: unknown fields -- ``status``, ``owner_id``,
``team_size`` ... -- are rejected with 422, never silently stored. The API speaks
hours; services work in whole minutes (``planned_minutes``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..models import MAX_CAPACITY, Category, ProjectMode, ProjectStatus
from .common import (
    ID_RANGE,
    TEXT_MAX,
    TITLE_MAX,
    AreaBrief,
    PageArgs,
    StrictSchema,
    TrimmedString,
    UserBrief,
    WholeNumber,
    hours_to_minutes,
    positive_hours,
    trimmed,
)

TAG_MAX = 20
TAGS_MAX = 10
#: Upper bound of a project's planned hours (a standing menu service runs for long).
PLANNED_HOURS_MAX = 10000


def _tag_list() -> fields.List:
    return fields.List(
        TrimmedString(validate=validate.Length(min=1, max=TAG_MAX)),
        load_default=list,
        validate=validate.Length(max=TAGS_MAX),
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
    planned_hours = positive_hours(PLANNED_HOURS_MAX)
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
