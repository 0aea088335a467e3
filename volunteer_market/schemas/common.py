"""Shared schema pieces: strict base, pagination, problem documents."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate


class StrictSchema(Schema):
    """Input schemas reject unknown fields (never silently stored)."""

    class Meta:
        unknown = RAISE


class PageArgs(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class ProblemSchema(Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.Raw())


_page_schemas: dict[str, type[Schema]] = {}


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """Return (once per item schema) a schema ``{items, page, per_page, total}``."""
    name = item_schema.__name__.removesuffix("Schema").removesuffix("Out") + "PageOut"
    if name not in _page_schemas:
        attrs: dict[str, Any] = {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "page": fields.Integer(required=True),
            "per_page": fields.Integer(required=True),
            "total": fields.Integer(required=True),
        }
        _page_schemas[name] = type(name, (Schema,), attrs)
    return _page_schemas[name]


def trimmed(max_len: int, *, min_len: int = 1, **kw: Any) -> fields.String:
    """Return a String field stripped of surrounding spaces with a length check."""
    return TrimmedString(validate=validate.Length(min=min_len, max=max_len), **kw)


class TrimmedString(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        out = super()._deserialize(value, attr, data, **kwargs)
        return out.strip()
