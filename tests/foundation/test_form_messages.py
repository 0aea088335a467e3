"""Every message a form can show is in the page's language (``web/messages.py``).

Schemas and services speak English (the API returns it). A page shows their messages
through ``web.forms.form_errors`` / ``domain_errors``, which look each one up in
``web/messages.py``. These tests read every message the services and schemas can
raise -- from their source, and by loading bad input into every ``*In`` schema -- and
check that each has a Chinese text (and an English one in the catalog).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask_babel import force_locale
from marshmallow import Schema, ValidationError

import volunteer_market.schemas as schemas_pkg
from volunteer_market.schemas.common import StrictSchema
from volunteer_market.services.errors import DomainError
from volunteer_market.web.forms import domain_errors, form_errors
from volunteer_market.web.messages import is_known, message_text

ROOT = Path(__file__).resolve().parents[2] / "volunteer_market"
CJK = re.compile(r"[\u4e00-\u9fff]")

#: Sample values of the varying parts of f-string messages, by the expression's source
#: (any other part is filled with a number).
SAMPLES = {"who": ["You have", "This beneficiary has"]}


@contextmanager
def in_language(app, locale: str) -> Iterator[None]:
    """Run the block in a request whose page language is ``locale``."""
    with app.test_request_context("/"), force_locale(locale):
        yield


def _domain_error_names() -> set[str]:
    for info in pkgutil.walk_packages(
        [str(ROOT / "services")], prefix="volunteer_market.services."
    ):
        importlib.import_module(info.name)
    names, todo = set(), [DomainError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names | {"ValidationError"}


def _texts(node: ast.AST) -> Iterator[str]:
    """Yield the message texts in an argument: strings, f-strings (filled with samples),
    and those inside lists and dict values."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        variants = [""]
        for part in node.values:
            if isinstance(part, ast.Constant):
                variants = [v + str(part.value) for v in variants]
            else:
                assert isinstance(part, ast.FormattedValue)
                fills = SAMPLES.get(ast.unparse(part.value), ["7"])
                variants = [v + fill for v in variants for fill in fills]
        yield from variants
    elif isinstance(node, ast.List | ast.Tuple):
        for item in node.elts:
            yield from _texts(item)
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _texts(value)


#: marshmallow validators (their ``error=`` is a message).
VALIDATORS = {"Range", "Length", "Regexp", "OneOf", "NoneOf", "Equal", "ContainsOnly", "Predicate"}


def raised_messages() -> dict[str, str]:
    """Return ``{message: where}`` for every message a service or schema raises: the
    detail and ``errors`` of a domain error, a marshmallow ``ValidationError``'s
    messages, and a validator's ``error=``."""
    error_names = _domain_error_names()
    found: dict[str, str] = {}
    for folder in ("services", "schemas"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                args: list[ast.AST] = []
                if name in error_names:
                    args = list(node.args[:1])  # the detail / the messages (not a field name)
                    args += [k.value for k in node.keywords if k.arg == "errors"]
                if name in VALIDATORS:
                    args += [k.value for k in node.keywords if k.arg == "error"]
                for arg in args:
                    for text in _texts(arg):
                        found.setdefault(text, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


RAISED = raised_messages()


def test_the_scan_finds_the_messages():
    # the scan itself works: messages of each kind it reads are found
    assert "Taken." in RAISED  # errors={...} of a service
    assert "This username is taken." in RAISED  # a domain error's detail
    assert "Must not be 0." in RAISED  # a schema's ValidationError
    assert "Six digits." in RAISED  # a validator's error=
    assert "7 is granted on: 7." in RAISED  # an f-string, filled in
    assert "You have already rated this delivery (rating 7); change that rating instead." in RAISED
    assert len(RAISED) > 150


@pytest.mark.parametrize("message", sorted(RAISED))
def test_every_raised_message_has_a_page_text(app, message):
    assert is_known(message), f"add {message!r} ({RAISED[message]}) to web/messages.py"
    with in_language(app, "zh_CN"):
        assert CJK.search(message_text(message)), message
    with in_language(app, "en"):
        english = message_text(message)
        assert english and not CJK.search(english), (message, english)


# --- marshmallow's own messages, from every input schema -------------------------------------

BAD_VALUES = [
    None,
    "",
    "x",
    "1.5",
    1.5,
    True,
    -1,
    0,
    10**12,
    -(10**12),
    "a" * 6000,
    [],
    {},
    ["x"],
    [{}],
    [None],
    [{"user_id": "x", "hours": -1}],
    list(range(1, 1002)),
    "2026-13-45",
    "2026-01-01T10:00:00",
    "2026-01-01T10:00:00+08:00",
    "nan",
]


def input_schemas() -> list[type[Schema]]:
    for info in pkgutil.iter_modules(schemas_pkg.__path__, prefix="volunteer_market.schemas."):
        importlib.import_module(info.name)
    out, todo = [], [StrictSchema]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not cls.__name__.startswith("_") and cls is not StrictSchema:
            out.append(cls)
    return sorted(set(out), key=lambda c: c.__name__)


def _flat(messages: object) -> Iterator[str]:
    if isinstance(messages, dict):
        for value in messages.values():
            yield from _flat(value)
    elif isinstance(messages, list | tuple):
        for value in messages:
            yield from _flat(value)
    else:
        yield str(messages)


def schema_messages(schema_cls: type[Schema]) -> set[str]:
    """Load every bad value into every field of ``schema_cls`` (and nothing, and an
    unknown field); return the messages."""
    schema = schema_cls()
    payloads: list[dict[str, object]] = [{}, {"no_such_field": 1}]
    payloads += [{name: bad} for name in schema.fields for bad in BAD_VALUES]
    out: set[str] = set()
    for payload in payloads:
        try:
            schema.load(payload)
        except ValidationError as exc:
            out.update(_flat(exc.messages))
    return out


@pytest.mark.parametrize("schema_cls", input_schemas(), ids=lambda c: c.__name__)
def test_every_schema_message_has_a_page_text(app, schema_cls):
    messages = schema_messages(schema_cls)
    assert messages  # a schema that refuses nothing would prove nothing here
    unknown = sorted(m for m in messages if not is_known(m))
    assert not unknown, f"{schema_cls.__name__}: add to web/messages.py: {unknown}"
    with in_language(app, "zh_CN"):
        assert all(CJK.search(message_text(m)) for m in messages)


# --- the helpers the forms use ----------------------------------------------------------------


def test_form_errors_flatten_and_translate(app):
    exc = ValidationError(
        {
            "title": ["Missing data for required field."],
            "participants": {
                0: {"hours": ["Must be greater than 0 and less than or equal to 24."]}
            },
            "_schema": ["Give exactly one of project_id and member_id."],
        }
    )
    with in_language(app, "zh_CN"):
        assert form_errors(exc) == {
            "title": ["必填。"],
            "participants.0.hours": ["取值范围：0 ~ 24。"],
            "_schema": ["请选择派单对象（项目或党员，只选一个）。"],
        }
    with in_language(app, "en"):
        assert form_errors(exc)["title"] == ["Required."]


def test_domain_errors_use_the_fields_or_the_detail(app):
    from volunteer_market.services.errors import Conflict, ValidationFailed

    with in_language(app, "zh_CN"):
        assert domain_errors(
            ValidationFailed("Password too short.", errors={"password": ["At least 8 characters."]})
        ) == {"password": ["至少 8 个字符。"]}
        assert domain_errors(Conflict("This transaction has already been reversed.")) == {
            "_schema": ["该交易已被冲正。"]
        }
        # a state inside a message is shown by its label
        assert domain_errors(Conflict("A project that is approved takes no orders.")) == {
            "_schema": ["项目当前为「已通过」，不能预约。"]
        }
    with in_language(app, "en"):
        shown = domain_errors(Conflict("A project that is approved takes no orders."))
        assert shown == {"_schema": ["This project is Approved and takes no orders."]}


def test_an_unknown_message_is_shown_as_it_is(app):
    with in_language(app, "zh_CN"):
        assert message_text("Something nobody wrote.") == "Something nobody wrote."
    assert not is_known("Something nobody wrote.")
