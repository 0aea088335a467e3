"""The one JSON loader of request bodies, with limits.

Python's ``json.loads`` turns some hostile bodies into exceptions no handler expects (a
500, even for anonymous callers): nesting deeper than the interpreter's recursion limit
(``RecursionError``), integers of more than 4,300 digits (``ValueError`` from ``int``),
and ``\\ud800`` escapes that make strings no database or encoder accepts (lone
surrogates). :func:`loads` refuses all three, and ``NaN``/``Infinity``, with
:class:`JSONLimitError` (a ``json.JSONDecodeError``), which every caller already answers
as a malformed body: 400 problem+json under ``/api/``.

It is installed twice, so no body reaches the app another way: as the app's JSON
provider (:class:`LimitedJSONProvider`: ``request.get_json``, e.g. the login throttle
reading the username) and as webargs' body loader (:class:`LimitedParser`, the parser
of every ``@blp.arguments`` of the API).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

#: Deepest nesting of arrays and objects a body may have (the API's deepest is 3).
MAX_DEPTH = 32
#: Most digits of an integer (ids have 10; 2**63 has 19).
MAX_INT_DIGITS = 20

_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")


class JSONLimitError(json.JSONDecodeError):
    """A body refused by a limit of :func:`loads`."""

    def __init__(self, reason: str, doc: str = "", pos: int = 0) -> None:
        super().__init__(reason, doc or " ", pos)


def _depth_ok(text: str) -> bool:
    outside = _STRING_RE.sub("", text)
    if outside.count("[") + outside.count("{") <= MAX_DEPTH:
        return True
    depth = 0
    for match in _BRACKET_RE.finditer(outside):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            return False
    return True


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONLimitError(f"Integers may have at most {MAX_INT_DIGITS} digits.")
    return int(digits)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONLimitError("Numbers must be finite.")
    return value


def _parse_constant(name: str) -> float:
    raise JSONLimitError(f"{name} is not JSON.")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(data: str | bytes | bytearray) -> Any:
    """Parse a request body as JSON within the limits.

    :raises JSONLimitError: nesting past :data:`MAX_DEPTH`, an integer past
        :data:`MAX_INT_DIGITS` digits, a non-finite number or a lone surrogate.
    :raises json.JSONDecodeError: the body is not JSON (or not UTF-8).
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONLimitError("The body is not UTF-8.", pos=exc.start) from exc
    else:
        text = data
    if not _depth_ok(text):
        raise JSONLimitError(f"JSON may be nested at most {MAX_DEPTH} levels deep.", text)
    value = json.loads(
        text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
    )
    if "\\u" in text and _has_lone_surrogate(value):
        raise JSONLimitError("Strings must be valid Unicode (no lone surrogates).", text)
    return value


class LimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with :func:`loads` for reading (writing is unchanged)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class LimitedParser(FlaskParser):
    """webargs' Flask parser reading JSON bodies with :func:`loads`."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            raise json.JSONDecodeError("empty body", "", 0)  # webargs: the body is missing
        return loads(data)
