"""Schemas of the community dashboard (``GET /api/v1/dashboards/communities/{id}``)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import StrictSchema


class DashboardQuery(StrictSchema):
    #: A year, quarter or month; the service checks the shape (default: this year).
    period = fields.String(validate=validate.Length(min=4, max=7))


class MonthPointsOut(Schema):
    month = fields.String()
    points = fields.Integer()


class MonthHoursOut(Schema):
    month = fields.String()
    hours = fields.Float()


class GridNeedsOut(Schema):
    grid_id = fields.Integer(allow_none=True)
    name = fields.String(allow_none=True)
    open = fields.Integer()
    served = fields.Integer()


class MenuProjectOut(Schema):
    project_id = fields.Integer()
    title = fields.String()


class DashboardOut(Schema):
    community_id = fields.Integer()
    period = fields.String()
    months = fields.List(fields.String())
    points_by_month = fields.List(fields.Nested(MonthPointsOut))
    hours_by_month = fields.List(fields.Nested(MonthHoursOut))
    needs_by_grid = fields.List(fields.Nested(GridNeedsOut))
    unordered_menu_projects = fields.List(fields.Nested(MenuProjectOut))
    members = fields.Integer()
    active_members = fields.Integer()
    participation_rate = fields.Float()
