"""``flask demo load``: the Hanyang demo data, idempotent, every role, logins that work.

The demo is loaded once for the module (through ``flask demo load`` on an empty test
database, on whichever engine the suite runs); the tests read it, and the
idempotency test loads it a second time and proves nothing changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask

from volunteer_market.demo import DEMO_PASSWORD, HANYANG, PEOPLE
from volunteer_market.extensions import db
from volunteer_market.models import Area, AreaKind, Role, RoleGrant, User

from .conftest import reset_empty


@dataclass
class Demo:
    app: Flask
    output: str


@pytest.fixture(scope="module")
def demo(module_app, database_template) -> Demo:
    app, path = module_app
    with app.app_context():
        reset_empty(path, database_template)
        result = app.test_cli_runner().invoke(args=["demo", "load"])
        assert result.exit_code == 0, (result.output, result.exception)
        db.session.remove()
    return Demo(app=app, output=result.output)


@pytest.fixture
def app(demo):
    with demo.app.app_context():
        yield demo.app
        db.session.remove()


def _snapshot() -> dict[str, list[str]]:
    with db.engine.connect() as conn:
        return {
            t.name: sorted(repr(tuple(r)) for r in conn.execute(t.select()))
            for t in db.metadata.sorted_tables
        }


def test_demo_load_prints_the_logins(demo):
    assert f"Demo logins (password for all: {DEMO_PASSWORD}):" in demo.output
    for username, _name, role, path, _personal in PEOPLE:
        where = " > ".join(path) or "global"
        line = rf"^\s+{re.escape(username)}\s+{role.value}\s+{re.escape(where)}$"
        assert re.search(line, demo.output, re.M), username


def test_demo_builds_the_hanyang_tree(app):
    areas = db.session.scalars(sa.select(Area)).all()
    by_kind: dict[AreaKind, set[str]] = {}
    for a in areas:
        by_kind.setdefault(a.kind, set()).add(a.name)
    assert by_kind[AreaKind.DISTRICT] == {"汉阳区"}
    assert by_kind[AreaKind.STREET] == set(HANYANG)
    assert {"龙阳街", "琴断口街", "四新街", "建桥街", "江堤街", "永丰街"} <= by_kind[
        AreaKind.STREET
    ]
    named = {"龙湖东岸社区", "七里一村社区", "紫荆花社区", "梅林都汇社区", "显正街社区", "龙磨社区"}
    assert named <= by_kind[AreaKind.COMMUNITY]
    ids = {a.id: a for a in areas}
    for a in areas:  # materialized paths are consistent with the parent links
        assert a.path == "".join(f"/{i}" for i in a.ancestor_ids()) + "/"
        if a.parent_id is not None:
            assert a.path.startswith(ids[a.parent_id].path)
            assert a.depth == ids[a.parent_id].depth + 1
    for c in (a for a in areas if a.kind == AreaKind.COMMUNITY):
        assert any(a.parent_id == c.id and a.kind == AreaKind.GRID for a in areas), c.name


def test_demo_has_every_role(app):
    roles = set(db.session.scalars(sa.select(RoleGrant.role).where(RoleGrant.revoked_at.is_(None))))
    assert roles == set(Role)
    for username, _name, role, _path, _personal in PEOPLE:
        user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one()
        assert role in {g.role for g in user.grants}, username


def test_every_demo_account_can_sign_in(app):
    from volunteer_market.services import auth as auth_service
    from volunteer_market.services.errors import AuthenticationFailed

    for username, *_rest in PEOPLE:
        user = auth_service.authenticate(username, DEMO_PASSWORD)
        assert isinstance(user, User) and user.is_active
    with pytest.raises(AuthenticationFailed):
        auth_service.authenticate("admin", "wrong-password")


@pytest.mark.parametrize("username", ["admin", "secretary_lh", "member_chen", "resident_wang"])
def test_demo_login_works_through_the_api(app, username):
    client = app.test_client()
    resp = client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
    assert resp.status_code == 201, resp.get_json()
    token = resp.get_json()["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    body = me.get_json()
    assert body["user"]["username"] == username
    expected = next(role for u, _n, role, _p, _d in PEOPLE if u == username)
    assert expected.value in {r["role"] for r in body["roles"]}


def test_demo_privacy_data_is_masked_for_an_officer(app):
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/token", json={"username": "officer_ly", "password": DEMO_PASSWORD}
    ).get_json()["token"]
    wang = db.session.execute(sa.select(User).where(User.username == "resident_wang")).scalar_one()
    body = client.get(
        f"/api/v1/users/{wang.id}", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert body["phone"] == "137****1234"
    assert body["household_tags"] is None  # officers see no household tags (issue 20)


def test_demo_load_is_idempotent(app, demo):
    before = _snapshot()
    assert len(before["users"]) >= len(PEOPLE) and len(before["areas"]) > 10
    again = app.test_cli_runner().invoke(args=["demo", "load"])
    assert again.exit_code == 0, (again.output, again.exception)
    assert again.output == demo.output  # the same logins, printed again
    assert _snapshot() == before  # not one row added or changed anywhere
