"""Reading page forms and query strings, and showing their errors.

Every form loads the same ``*In`` schema as the API, and every form shows its errors
through :func:`form_errors` (a marshmallow ``ValidationError`` or a ``{field:
[messages]}`` dict) or :func:`domain_errors` (a service's refusal): field messages
flattened to one level (``participants.0.hours``) and shown in the page's language
(:func:`~volunteer_market.web.messages.message_text`), never marshmallow's or a
service's English.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import request
from marshmallow import ValidationError

from ..schemas.common import MAX_ID
from ..services.errors import DomainError
from ..zones import DEFAULT_ZONE
from .messages import message_text

E = TypeVar("E", bound=Enum)

# --- form fields ----------------------------------------------------------------------


def form_data(form: Any, fields: list[str]) -> dict[str, Any]:
    """Return the named fields of a submitted form, an empty string as None (absent
    fields are left out)."""
    out: dict[str, Any] = {}
    for name in fields:
        value = form.get(name)
        if value is None:
            continue
        out[name] = value if value != "" else None
    return out


def digits(value: str | None) -> int | None:
    """Return a form value written in ASCII digits as an int, else None."""
    if value and value.isascii() and value.isdigit():
        return int(value)
    return None


def form_id(value: str | None) -> int:
    """Return a form's hidden id field as an id, 0 (no row has it) unless it is ASCII
    digits up to ``MAX_ID``."""
    number = digits(value)
    return number if number is not None and number <= MAX_ID else 0


_SPLIT_RE = re.compile(r"[,，、;；\s]+")


def tags(value: str | None) -> list[str]:
    """Split a typed list (commas, enumeration commas, semicolons or spaces) into tags."""
    return [t for t in _SPLIT_RE.split(value or "") if t]


def local_to_iso(value: str | None, tz: ZoneInfo) -> str | None:
    """Turn a ``datetime-local`` value into ISO 8601 with the community's offset (other
    text is passed on for the schema to refuse)."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return value  # the schema reports it
    if naive.tzinfo is not None:
        return naive.isoformat()
    return naive.replace(tzinfo=tz).isoformat()


def local_input(value: datetime | None, tz: ZoneInfo | None = None) -> str:
    """Return a ``datetime-local`` input value for ``value`` in ``tz``."""
    if value is None:
        return ""
    return value.astimezone(tz or DEFAULT_ZONE).strftime("%Y-%m-%dT%H:%M")


# --- query arguments ------------------------------------------------------------------


def int_arg(name: str) -> int | None:
    """Return the query argument ``name`` as an id (0 to ``MAX_ID``), else None.

    A filter given as something else is ignored, as if absent; a number beyond the
    ids the database holds would overflow the SQLite driver (a 500) rather than find
    nothing.
    """
    value = request.args.get(name, "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > len(str(MAX_ID)):
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def enum_arg(enum_cls: type[E], name: str) -> E | None:
    """Return the query argument ``name`` as a member of ``enum_cls``, None if it is none."""
    value = request.args.get(name, "").strip()
    try:
        return enum_cls(value) if value else None
    except ValueError:
        return None


# --- errors ---------------------------------------------------------------------------


def form_errors(source: ValidationError | dict[str, Any] | list[Any] | str) -> dict[str, list[str]]:
    """Return field errors as ``{field: [messages]}`` in the page's language.

    ``source`` is a marshmallow ``ValidationError`` or its messages (a service's
    ``errors`` dict). Nested errors get dotted names (``participants.0.hours``);
    errors of the whole form are under ``_schema``.
    """
    messages: Any = source.messages if isinstance(source, ValidationError) else source
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, dict | list | tuple):
                    walk(prefix, item)
                else:
                    out.setdefault(prefix or "_schema", []).append(message_text(str(item)))
        else:
            out.setdefault(prefix or "_schema", []).append(message_text(str(value)))

    walk("", messages)
    return out


def domain_errors(exc: DomainError) -> dict[str, list[str]]:
    """Return a service's refusal as form errors: its field errors, or its detail under
    ``_schema``, in the page's language."""
    if exc.errors:
        return form_errors(exc.errors)
    return {"_schema": [message_text(exc.detail)]}


def joined(errors: dict[str, list[str]]) -> str:
    """Return every message of ``errors`` on one line (for a flashed message)."""
    return "；".join(m for messages in errors.values() for m in messages)
