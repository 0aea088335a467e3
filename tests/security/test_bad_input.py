"""Bad input is a clear 4xx, never a 500 (issue 20, item 3).

Before: deeply nested JSON (``RecursionError``), a 4,400-digit integer (``ValueError``)
and a lone surrogate (``\\ud800``) in a body answered 500, even anonymously on
``/api/v1/auth/token``; path ids in other scripts' digits (``/projects/١``) were read
as numbers. Now one JSON loader (``http/json_body.py``) answers 400 problem+json, one
integer type (``StrictSchema``) refuses integers not written in ASCII digits (422), and
the ``int`` URL converter matches ASCII digits only (404).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.http.json_body import MAX_DEPTH, JSONLimitError, loads

from ..conftest import login
from ..factories import bearer, make_project

NESTED = "[" * 100_000 + "]" * 100_000
HUGE_INT = "1" * 4400
BODIES = {
    "nested": '{"username": "member_a", "password": ' + NESTED + "}",
    "nested_object": '{"a": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
    "huge_integer": '{"username": "member_a", "password": ' + HUGE_INT + "}",
    "lone_surrogate": '{"username": "member_a\\ud800", "password": "password123"}',
    "lone_low_surrogate": '{"username": "member_a", "password": "x\\udc00y"}',
    "surrogate_key": '{"\\ud800": 1}',
    "nan": '{"username": "member_a", "password": NaN}',
    "infinite": '{"username": "member_a", "password": 1e999}',
}


def _problem(resp, status: int) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/problem+json"
    return resp.get_json()


def _count(table: str) -> int:
    return db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608


@pytest.mark.parametrize("name", sorted(BODIES))
def test_hostile_bodies_are_400_for_anonymous_callers(client, world, name):
    tokens = _count("api_tokens")
    resp = client.post("/api/v1/auth/token", data=BODIES[name], content_type="application/json")
    assert _problem(resp, 400)["status"] == 400
    assert _count("api_tokens") == tokens


@pytest.mark.parametrize("name", sorted(BODIES))
def test_hostile_bodies_are_400_on_a_write(client, world, name):
    users = _count("users")
    body = BODIES[name].replace('"username": "member_a', '"username": "newbie')
    resp = client.post(
        "/api/v1/users", data=body, content_type="application/json", headers=bearer(world.admin)
    )
    _problem(resp, 400)
    assert _count("users") == users


def test_valid_bodies_still_load():
    assert loads('{"a": [1, -2, 3.5, "é😀", "\\ud83d\\ude00", null, true]}') == {
        "a": [1, -2, 3.5, "é😀", "😀", None, True]
    }
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(deep) is not None
    assert loads(b'{"n": 12345678901234567890}') == {"n": 12345678901234567890}
    # brackets inside strings do not count as nesting
    assert loads(json.dumps({"t": "[" * 1000})) == {"t": "[" * 1000}


@pytest.mark.parametrize(
    "text",
    [
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"n": 123456789012345678901}',
        '{"n": -123456789012345678901}',
        '["\\ud800"]',
        '"\\udfff"',
        "[NaN]",
        "[-Infinity]",
        "[1e400]",
        b'{"a": "\xff"}',
    ],
)
def test_the_loader_refuses(text):
    with pytest.raises(JSONLimitError):
        loads(text)


def test_the_login_throttle_reads_bodies_with_the_limits(client, world):
    # the throttle's key reads the username with request.get_json(silent=True)
    resp = client.post(
        "/api/v1/auth/token", data=BODIES["nested"].encode(), content_type="application/json"
    )
    _problem(resp, 400)


# --- integers in query strings and paths --------------------------------------------------

BAD_INTEGERS = ["²", "١٢", "1_000", "12345678901234567890123", "9" * 4400]


@pytest.mark.parametrize("value", BAD_INTEGERS)
@pytest.mark.parametrize(
    ("path", "arg"),
    [
        ("/api/v1/rankings", "area_id"),
        ("/api/v1/rankings/teams", "area_id"),
        ("/api/v1/projects", "community_id"),
        ("/api/v1/needs", "community_id"),
        ("/api/v1/needs", "project_id"),
        ("/api/v1/notifications", "page"),
        ("/api/v1/projects", "per_page"),
    ],
)
def test_api_integer_arguments_in_other_digits_are_422(client, world, path, arg, value):
    resp = client.get(path, query_string={arg: value}, headers=bearer(world.secretary_a))
    body = _problem(resp, 422)
    assert arg in body["errors"]


@pytest.mark.parametrize("value", BAD_INTEGERS + ["99999999999999999999", "-1"])
@pytest.mark.parametrize(
    ("path", "arg", "user"),
    [
        ("/rankings", "area_id", "member_a"),
        ("/rankings/teams", "area_id", "secretary_a"),
        ("/projects", "community_id", "member_a"),
        ("/projects", "page", "member_a"),
        ("/needs", "community_id", "member_a"),
        ("/notifications", "page", "member_a"),
        ("/projects/new", "community_id", "member_a"),
    ],
)
def test_page_filters_in_other_digits_are_ignored(client, world, path, arg, user, value):
    """Pages ignore a filter that is no id, as if it were absent; never a 500."""
    login(client, user)
    plain = client.get(path)
    assert plain.status_code == 200
    assert client.get(path, query_string={arg: value}).status_code == 200


@pytest.mark.parametrize("spelling", ["١", "²", "𝟏", "1" + "0" * 19])
def test_path_ids_are_ascii_digits(client, world, spelling):
    project = make_project(world.member_a, world.community_a, status="approved")
    assert project.id == 1
    headers = bearer(world.member_a)
    assert client.get("/api/v1/projects/1", headers=headers).status_code == 200
    _problem(client.get(f"/api/v1/projects/{spelling}", headers=headers), 404)
    login(client, "member_a")
    assert client.get("/projects/1").status_code == 200
    assert client.get(f"/projects/{spelling}").status_code == 404
    assert client.get(f"/needs/{spelling}/dispatch").status_code == 404


def test_a_nameless_multipart_part_is_a_422_not_a_500(client, world):
    """Found by the fuzz run: a form part without a name is a ``None`` key whose
    "Unknown field." error could not be encoded (``TypeError`` sorting the keys)."""
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nnope\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    resp = client.post(
        "/api/v1/imports",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=bearer(world.admin),
    )
    assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/problem+json"
