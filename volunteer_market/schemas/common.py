"""Shared schema pieces: strict base, pagination, problem documents."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

#: Ids are 32-bit on every engine (INTEGER on PostgreSQL). Id fields of requests are
#: limited to ``1..MAX_ID`` (422 otherwise): a larger number would overflow the database
#: driver (SQLite's 64-bit INTEGER, PostgreSQL's int4) with a 500. Path ids use the
#: app's ``int`` URL converter (``routing.IdConverter``), bounded the same way.
MAX_ID = 2**31 - 1
#: ``validate=ID_RANGE`` for an id field of a request.
ID_RANGE = validate.Range(min=1, max=MAX_ID)

#: Lengths of the titles and free texts of projects and needs.
TITLE_MAX = 100
TEXT_MAX = 5000


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_nul(v) for v in value.values())
    return False


#: An integer written as text (a query argument, a form field): ASCII digits only, at
#: most 20 of them. ``int()`` also reads other scripts' digits (``١٢``), underscores
#: (``1_000``) and surrounding spaces, and raises ``ValueError`` past 4,300 digits.
INTEGER_TEXT_RE = re.compile(r" *[+-]?[0-9]{1,20} *")


def _integer_field(field: fields.Field) -> bool:
    if isinstance(field, fields.List):
        return isinstance(field.inner, fields.Integer)
    return isinstance(field, fields.Integer)


def _bad_integer_text(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_bad_integer_text(v) for v in value)
    return isinstance(value, str) and not INTEGER_TEXT_RE.fullmatch(value)


class StrictSchema(Schema):
    """Input schemas reject unknown fields (never silently stored), text containing
    NUL characters (PostgreSQL cannot store or even compare them: a 500 otherwise) and
    integers given as text that is not ASCII digits (:data:`INTEGER_TEXT_RE`): the one
    integer argument type of every query string, form and body."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_nul(self, data: Any, **_kw: Any) -> Any:
        if isinstance(data, Mapping):
            bad = sorted(str(k) for k, v in data.items() if _has_nul(v))
            if bad:
                raise ValidationError({k: ["Must not contain NUL characters."] for k in bad})
            bad = sorted(
                name
                for name, field in self.load_fields.items()
                if _integer_field(field) and _bad_integer_text(data.get(field.data_key or name))
            )
            if bad:
                raise ValidationError({k: ["Not a valid integer."] for k in bad})
        return data


class PageArgs(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class ProblemSchema(Schema):
    """An ``application/problem+json`` error (API.md "Errors"); ``errors`` holds the
    messages per field for validation failures."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


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


#: Characters no text of ours may hold: C0/C1 controls (tab and line breaks are allowed in
#: multi-line texts only), DEL, and the bidirectional overrides and isolates that make a
#: title or name display as something else (``U+202E`` turns "gpj.exe" around).
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
_BAD_TEXT_RE = re.compile(f"[{_CONTROLS}]")
_BAD_LINE_RE = re.compile(f"[{_CONTROLS}\t\n\r\u2028\u2029]")
#: Texts up to this length are one line (titles, names); longer ones may have line breaks.
SINGLE_LINE_MAX = TITLE_MAX


def trimmed(max_len: int, *, min_len: int = 1, **kw: Any) -> fields.String:
    """Return a String field stripped of surrounding spaces with a length check; control
    and bidi-override characters are refused (line breaks too up to
    :data:`SINGLE_LINE_MAX` characters: titles and names are one line)."""
    return TrimmedString(
        validate=validate.Length(min=min_len, max=max_len),
        single_line=max_len <= SINGLE_LINE_MAX,
        **kw,
    )


class TrimmedString(fields.String):
    """A string stripped of surrounding spaces, without control or bidi characters."""

    def __init__(self, *args: Any, single_line: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.single_line = single_line

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        out = super()._deserialize(value, attr, data, **kwargs).strip()
        if (_BAD_LINE_RE if self.single_line else _BAD_TEXT_RE).search(out):
            raise ValidationError("Must not contain control characters.")
        return out


class WholeNumber(fields.Integer):
    """An integer that also accepts form strings ("5") but never a fraction (5.5) or a bool."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid")
        return super()._validated(value)


def hours_to_minutes(hours: float) -> int:
    """Return whole minutes for ``hours`` (rounded to the nearest minute)."""
    return round(hours * 60)


def positive_hours(max_hours: float) -> fields.Float:
    """Return a required Float field of hours: more than 0, at most ``max_hours``."""
    return fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(min=0, max=max_hours, min_inclusive=False),
    )


class UserBrief(Schema):
    id = fields.Integer()
    display_name = fields.String()


class AreaBrief(Schema):
    id = fields.Integer()
    name = fields.String()
