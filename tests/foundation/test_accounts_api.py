"""Every endpoint of api/accounts.py and api/auth.py: who may, envelopes, validation, privacy."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import AuditEntry, Role, RoleGrant, User

from ..factories import bearer
from .conftest import count_rows, fresh_session

PROBLEM = "application/problem+json"


def problem(resp, status: int) -> dict:
    """Assert ``resp`` is a problem+json document with ``status``; return the body."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def field_errors(resp, *fields: str) -> dict:
    """Assert a 422 with messages for exactly ``fields``."""
    body = problem(resp, 422)
    assert set(body["errors"]) == set(fields), body["errors"]
    for msgs in body["errors"].values():
        assert msgs and all(isinstance(m, str) and m for m in msgs)
    return body["errors"]


@pytest.fixture
def h(world):
    """Bearer headers by user name (every token is issued up front, so row counts taken
    inside a test are not disturbed by issuing one)."""
    tokens = {name: bearer(user) for name, user in world.users.items()}
    return tokens.__getitem__


# --- /me ------------------------------------------------------------------------------------


def test_me(client, world, h):
    resp = client.get("/api/v1/me", headers=h("resident_a"))
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"user", "roles", "points"}
    assert body["user"]["username"] == "resident_a"
    assert body["user"]["phone"] == "13712341234"  # one's own data is never masked
    assert body["user"]["address"] == "龙湖东岸 3 栋 401"
    assert body["roles"] == [
        {"id": body["roles"][0]["id"], "role": "resident", "area_id": world.areas["grid_a1"].id}
    ]
    assert body["points"] == {"available": 0, "held": 0, "earned_total": 0}


def test_me_admin_has_global_role(client, world, h):
    body = client.get("/api/v1/me", headers=h("admin")).get_json()
    assert [(r["role"], r["area_id"]) for r in body["roles"]] == [("admin", None)]


# --- areas ------------------------------------------------------------------------------------


def test_admin_creates_area(client, world, h):
    before = count_rows()
    resp = client.post(
        "/api/v1/areas",
        json={"name": " 第三网格 ", "kind": "grid", "parent_id": world.community_a.id},
        headers=h("admin"),
    )
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["name"] == "第三网格"
    assert body["kind"] == "grid"
    assert body["parent_id"] == world.community_a.id
    assert body["depth"] == 3
    assert body["path"] == f"{world.community_a.path}{body['id']}/"
    after = count_rows()
    assert after["areas"] == before["areas"] + 1
    assert after["audit_log"] == before["audit_log"] + 1
    fresh_session()
    entry = db.session.execute(
        sa.select(AuditEntry)
        .where(AuditEntry.action == "area.create")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).scalar_one()
    assert entry.actor_id == world.admin.id and entry.object_id == body["id"]
    assert entry.origin == "127.0.0.1"


@pytest.mark.parametrize(
    "who",
    ["officer_district", "officer_street", "secretary_a", "grid_a1", "member_a", "resident_a"],
)
def test_only_admin_creates_areas(client, world, h, who):
    before = count_rows()
    resp = client.post(
        "/api/v1/areas",
        json={"name": "新网格", "kind": "grid", "parent_id": world.community_a.id},
        headers=h(who),
    )
    problem(resp, 403)
    assert count_rows() == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"kind": "grid"}, {"name"}),
        ({"name": "x"}, {"kind"}),
        ({"name": "x", "kind": "village", "parent_id": None}, {"kind"}),
        ({"name": "", "kind": "district"}, {"name"}),
        ({"name": "   ", "kind": "district"}, {"name"}),
        ({"name": "x" * 101, "kind": "district"}, {"name"}),
        ({"name": "x", "kind": "district", "parent_id": 0}, {"parent_id"}),
        ({"name": "x", "kind": "district", "parent_id": "abc"}, {"parent_id"}),
        ({"name": "x", "kind": "district", "path": "/1/"}, {"path"}),
        ({"name": "x", "kind": "district", "id": 99}, {"id"}),
        ({"name": "x", "kind": "grid", "parent_id": 999999}, {"parent_id"}),
        ({"name": "x", "kind": "grid", "parent_id": None}, {"kind"}),
        ({"name": "x", "kind": "street", "parent_id": "COMMUNITY"}, {"kind"}),
    ],
)
def test_area_validation(client, world, h, body, fields):
    if body.get("parent_id") == "COMMUNITY":
        body = {**body, "parent_id": world.community_a.id}
    before = count_rows()
    field_errors(client.post("/api/v1/areas", json=body, headers=h("admin")), *fields)
    assert count_rows() == before


def test_area_validation_problem_names_unknown_field(client, world, h):
    resp = client.post(
        "/api/v1/areas",
        json={"name": "x", "kind": "district", "colour": "red"},
        headers=h("admin"),
    )
    errors = field_errors(resp, "colour")
    assert "Unknown field." in errors["colour"]


def test_duplicate_area_is_409(client, world, h):
    before = count_rows()
    resp = client.post(
        "/api/v1/areas",
        json={"name": "第一网格", "kind": "grid", "parent_id": world.community_a.id},
        headers=h("admin"),
    )
    problem(resp, 409)
    assert count_rows() == before
    # The same name under another parent is fine.
    resp = client.post(
        "/api/v1/areas",
        json={"name": "第二网格", "kind": "grid", "parent_id": world.community_b.id},
        headers=h("admin"),
    )
    assert resp.status_code == 201


@pytest.mark.parametrize("who", ["admin", "member_a", "resident_c", "officer_other"])
def test_any_user_reads_areas(client, world, h, who):
    resp = client.get("/api/v1/areas", headers=h(who))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["total"] == 10 and body["page"] == 1 and body["per_page"] == 100
    assert len(body["items"]) == 10
    by_id = {a["id"]: a for a in body["items"]}
    assert by_id[world.areas["grid_a1"].id]["parent_id"] == world.community_a.id
    assert by_id[world.areas["grid_a1"].id]["kind"] == "grid"
    assert by_id[world.district.id]["parent_id"] is None
    one = client.get(f"/api/v1/areas/{world.community_b.id}", headers=h(who))
    assert one.status_code == 200
    assert one.get_json() == by_id[world.community_b.id]


def test_area_pagination(client, world, h):
    seen = []
    for page, size in [(1, 3), (2, 3), (3, 3), (4, 1)]:
        resp = client.get(f"/api/v1/areas?per_page=3&page={page}", headers=h("member_a"))
        body = resp.get_json()
        assert resp.status_code == 200
        assert (body["page"], body["per_page"], body["total"]) == (page, 3, 10)
        assert len(body["items"]) == size
        seen += [a["id"] for a in body["items"]]
    assert len(set(seen)) == 10
    empty = client.get("/api/v1/areas?per_page=3&page=5", headers=h("member_a")).get_json()
    assert empty["items"] == [] and empty["total"] == 10
    full = client.get("/api/v1/areas?per_page=100", headers=h("member_a")).get_json()
    assert len(full["items"]) == 10


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=101", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("kind=village", "kind"),
        ("parent_id=-1", "parent_id"),
    ],
)
def test_area_query_validation(client, world, h, query, field):
    field_errors(client.get(f"/api/v1/areas?{query}", headers=h("member_a")), field)


def test_area_filters(client, world, h):
    def ids(query):
        body = client.get(f"/api/v1/areas?{query}", headers=h("member_a")).get_json()
        assert body["total"] == len(body["items"])
        return {a["id"] for a in body["items"]}

    a = world.areas
    assert ids("kind=grid") == {a[k].id for k in ("grid_a1", "grid_a2", "grid_b1", "grid_c1")}
    assert ids(f"parent_id={a['community_a'].id}") == {a["grid_a1"].id, a["grid_a2"].id}
    assert ids(f"under={a['street'].id}") == {
        a[k].id for k in ("street", "community_a", "community_b", "grid_a1", "grid_a2", "grid_b1")
    }
    assert ids(f"under={a['street'].id}&kind=community") == {
        a["community_a"].id,
        a["community_b"].id,
    }


def test_unknown_area_is_404(client, world, h):
    problem(client.get("/api/v1/areas/999999", headers=h("member_a")), 404)
    problem(client.get("/api/v1/areas?under=999999", headers=h("member_a")), 404)


# --- users ------------------------------------------------------------------------------------


NEW_USER = {
    "username": "new.user",
    "password": "long-enough-1",
    "display_name": " 新用户 ",
    "phone": "13811112222",
    "address": "龙湖东岸 9 栋",
    "household_tags": "独居",
    "home_unit": "区民政局",
}


@pytest.mark.parametrize("who", ["admin", "secretary_a"])
def test_create_user(client, world, h, who):
    before = count_rows()
    resp = client.post("/api/v1/users", json=NEW_USER, headers=h(who))
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["username"] == "new.user"
    assert body["display_name"] == "新用户"
    assert body["phone"] == "13811112222"  # the creator sees what they typed
    assert body["roles"] == []
    assert body["is_active"] is True
    assert "password" not in body and "password_hash" not in body
    after = count_rows()
    assert after["users"] == before["users"] + 1
    fresh_session()
    user = db.session.execute(sa.select(User).where(User.username == "new.user")).scalar_one()
    assert user.created_by_id == world.users[who].id
    assert user.password_hash.startswith("$argon2id$")
    assert "long-enough-1" not in user.password_hash
    # The new account can sign in.
    token = client.post(
        "/api/v1/auth/token", json={"username": "new.user", "password": "long-enough-1"}
    )
    assert token.status_code == 201


def test_minimal_user_body(client, world, h):
    body = {"username": "minimal", "password": "long-enough-1", "display_name": "M"}
    resp = client.post("/api/v1/users", json=body, headers=h("admin"))
    assert resp.status_code == 201
    out = resp.get_json()
    assert out["phone"] is None and out["address"] is None and out["home_unit"] is None


@pytest.mark.parametrize(
    "who", ["officer_district", "officer_street", "grid_a1", "member_a", "resident_a"]
)
def test_create_user_forbidden(client, world, h, who):
    before = count_rows()
    problem(client.post("/api/v1/users", json=NEW_USER, headers=h(who)), 403)
    assert count_rows() == before


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"username": None}, {"username"}),
        ({"username": "ab"}, {"username"}),
        ({"username": "has space"}, {"username"}),
        ({"username": "x" * 65}, {"username"}),
        ({"password": "short"}, {"password"}),
        ({"password": None}, {"password"}),
        ({"display_name": ""}, {"display_name"}),
        ({"display_name": "x" * 101}, {"display_name"}),
        ({"phone": "call me"}, {"phone"}),
        ({"address": "x" * 256}, {"address"}),
        ({"is_active": False}, {"is_active"}),
        ({"role": "admin"}, {"role"}),
        ({"created_by_id": 1}, {"created_by_id"}),
        ({"username": 12345}, {"username"}),
    ],
)
def test_create_user_validation(client, world, h, change, fields):
    body = {**NEW_USER, **change}
    body = {k: v for k, v in body.items() if not (v is None and k in ("username", "password"))}
    before = count_rows()
    field_errors(client.post("/api/v1/users", json=body, headers=h("admin")), *fields)
    assert count_rows() == before


def test_create_user_missing_everything(client, world, h):
    before = count_rows()
    field_errors(
        client.post("/api/v1/users", json={}, headers=h("admin")),
        "username",
        "password",
        "display_name",
    )
    assert count_rows() == before


@pytest.mark.parametrize("name", ["member_a", "MEMBER_A"])
def test_duplicate_username_is_409(client, world, h, name):
    before = count_rows()
    body = problem(
        client.post("/api/v1/users", json={**NEW_USER, "username": name}, headers=h("admin")),
        409,
    )
    assert "username" in body["errors"]
    assert count_rows() == before


PRIVATE = {"phone": "13712341234", "address": "龙湖东岸 3 栋 401", "household_tags": "空巢,独居"}
# Issue 20: a mask shows nothing of the value (a first character such as "空" is the tag);
# officers see no household tags at all, and the admin sees masked data only.
MASKED = {"phone": "137****1234", "address": "***", "household_tags": "***"}
OFFICER_VIEW = {"phone": "137****1234", "address": "***", "household_tags": None}


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("resident_a", PRIVATE),
        ("admin", MASKED),
        ("secretary_a", PRIVATE),
        ("grid_a1", PRIVATE),
        ("officer_street", OFFICER_VIEW),
        ("officer_district", OFFICER_VIEW),
        ("member_a", None),
        ("member_a2", None),
        ("resident_a2", None),
        ("secretary_b", None),
        ("secretary_c", None),
        ("grid_b1", None),
        ("officer_other", None),
    ],
)
def test_user_privacy(client, world, h, viewer, expected):
    """Personal data: unmasked for self, secretary and grid workers of the community;
    masked for the admin and officers (officers see no household tags); members and other communities do not see the user at all (404)."""
    resp = client.get(f"/api/v1/users/{world.resident_a.id}", headers=h(viewer))
    if expected is None:
        body = problem(resp, 404)
        unknown = problem(client.get("/api/v1/users/999999", headers=h(viewer)), 404)
        assert body == unknown  # indistinguishable from a user that does not exist
        assert "1234" not in resp.get_data(as_text=True)
        return
    assert resp.status_code == 200
    body = resp.get_json()
    assert {k: body[k] for k in expected} == expected
    assert body["username"] == "resident_a"
    assert body["roles"][0]["role"] == "resident"
    if expected is MASKED:
        text = resp.get_data(as_text=True)
        assert "13712341234" not in text and "3 栋" not in text and "独居" not in text


def test_created_user_later_placed_elsewhere_is_masked_to_creator(client, world, h):
    """A secretary still sees the person they created, but not their personal data once
    the person belongs to another community."""
    resp = client.post("/api/v1/users", json=NEW_USER, headers=h("secretary_a"))
    uid = resp.get_json()["id"]
    grant = client.post(
        f"/api/v1/users/{uid}/roles",
        json={"role": "resident", "area_id": world.grid_c1.id},
        headers=h("admin"),
    )
    assert grant.status_code == 201
    body = client.get(f"/api/v1/users/{uid}", headers=h("secretary_a")).get_json()
    assert body["phone"] == "138****2222"
    assert body["household_tags"] == "***"  # issue 20: nothing of the tag
    body = client.get(f"/api/v1/users/{uid}", headers=h("secretary_c")).get_json()
    assert body["phone"] == "13811112222"


def test_unknown_user_is_404(client, world, h):
    problem(client.get("/api/v1/users/999999", headers=h("admin")), 404)


# --- role grants --------------------------------------------------------------------------------


def _new_user(client, h, who="secretary_a", username="new.user"):
    resp = client.post("/api/v1/users", json={**NEW_USER, "username": username}, headers=h(who))
    assert resp.status_code == 201
    return resp.get_json()["id"]


@pytest.mark.parametrize(
    ("who", "role", "area"),
    [
        ("admin", "secretary", "community_a"),
        ("admin", "officer", "street"),
        ("admin", "admin", None),
        ("admin", "member", "community_c"),
        ("secretary_a", "member", "community_a"),
        ("secretary_a", "resident", "grid_a2"),
        ("secretary_a", "grid_worker", "grid_a1"),
    ],
)
def test_grant_role(client, world, h, who, role, area):
    uid = _new_user(client, h)
    before = count_rows()
    area_id = world.areas[area].id if area else None
    resp = client.post(
        f"/api/v1/users/{uid}/roles", json={"role": role, "area_id": area_id}, headers=h(who)
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["role"] == role and body["area_id"] == area_id
    after = count_rows()
    assert after["role_grants"] == before["role_grants"] + 1
    assert after["audit_log"] == before["audit_log"] + 1
    fresh_session()
    grant = db.session.get(RoleGrant, body["id"])
    assert grant.user_id == uid and grant.granted_by_id == world.users[who].id
    me = client.get("/api/v1/me", headers=bearer(db.session.get(User, uid))).get_json()
    assert [(r["role"], r["area_id"]) for r in me["roles"]] == [(role, area_id)]


@pytest.mark.parametrize(
    ("who", "target", "role", "area", "status"),
    [
        # secretary_a: roles it may not grant, or areas outside community A
        ("secretary_a", "member_a", "secretary", "community_a", 403),
        ("secretary_a", "member_a", "officer", "street", 403),
        ("secretary_a", "member_a", "admin", None, 403),
        ("secretary_a", "member_a", "member", "community_b", 403),
        ("secretary_a", "member_a", "resident", "grid_c1", 403),
        # another community's secretary cannot even see the user
        ("secretary_b", "resident_a", "resident", "grid_b1", 404),
        ("secretary_b", "member_a", "member", "community_b", 404),
        ("secretary_c", "member_a", "member", "community_a", 404),
        # officers see users of their subtree but grant nothing
        ("officer_street", "member_a", "member", "community_a", 403),
        ("officer_district", "resident_a", "grid_worker", "grid_a1", 403),
        # members, residents and grid workers grant nothing
        ("grid_a1", "resident_a", "grid_worker", "grid_a1", 403),
        ("member_a", "member_a2", "member", "community_a", 404),
        ("member_a", "member_a", "member", "community_b", 403),
        ("resident_a", "resident_a", "grid_worker", "grid_a1", 403),
    ],
)
def test_grant_role_refused(client, world, h, who, target, role, area, status):
    before = count_rows()
    area_id = world.areas[area].id if area else None
    resp = client.post(
        f"/api/v1/users/{world.users[target].id}/roles",
        json={"role": role, "area_id": area_id},
        headers=h(who),
    )
    problem(resp, status)
    assert count_rows() == before


def test_other_secretary_cannot_pull_a_resident_in_to_read_their_data(client, world, h):
    """Granting a role in B to A's resident would open A's personal data to B's secretary."""
    resp = client.post(
        f"/api/v1/users/{world.resident_a.id}/roles",
        json={"role": "resident", "area_id": world.grid_b1.id},
        headers=h("secretary_b"),
    )
    problem(resp, 404)
    problem(client.get(f"/api/v1/users/{world.resident_a.id}", headers=h("secretary_b")), 404)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"role": "king", "area_id": "A"}, {"role"}),
        ({"area_id": "A"}, {"role"}),
        ({"role": "member"}, {"area_id"}),
        ({"role": "member", "area_id": None}, {"area_id"}),
        ({"role": "admin", "area_id": "A"}, {"area_id"}),
        ({"role": "secretary", "area_id": "G"}, {"area_id"}),
        ({"role": "officer", "area_id": "A"}, {"area_id"}),
        ({"role": "member", "area_id": 999999}, {"area_id"}),
        ({"role": "member", "area_id": 0}, {"area_id"}),
        ({"role": "member", "area_id": "A", "user_id": 1}, {"user_id"}),
        ({"role": "member", "area_id": "A", "revoked_at": None}, {"revoked_at"}),
    ],
)
def test_grant_role_validation(client, world, h, body, fields):
    mapping = {"A": world.community_a.id, "G": world.areas["grid_a1"].id}
    body = {
        k: mapping.get(v, v) if isinstance(v, str) and k == "area_id" else v
        for k, v in body.items()
    }
    uid = _new_user(client, h, who="admin")
    before = count_rows()
    field_errors(client.post(f"/api/v1/users/{uid}/roles", json=body, headers=h("admin")), *fields)
    assert count_rows() == before


def test_duplicate_grant_is_409(client, world, h):
    before = count_rows()
    resp = client.post(
        f"/api/v1/users/{world.member_a.id}/roles",
        json={"role": "member", "area_id": world.community_a.id},
        headers=h("secretary_a"),
    )
    problem(resp, 409)
    assert count_rows() == before


def test_grant_to_unknown_user_is_404(client, world, h):
    before = count_rows()
    resp = client.post(
        "/api/v1/users/999999/roles",
        json={"role": "member", "area_id": world.community_a.id},
        headers=h("admin"),
    )
    problem(resp, 404)
    assert count_rows() == before


def _grant_id(user: User, role: Role) -> int:
    return db.session.execute(
        sa.select(RoleGrant.id).where(
            RoleGrant.user_id == user.id, RoleGrant.role == role, RoleGrant.revoked_at.is_(None)
        )
    ).scalar_one()


@pytest.mark.parametrize("who", ["admin", "secretary_a"])
def test_revoke_role(client, world, h, who):
    gid = _grant_id(world.member_a2, Role.MEMBER)
    before = count_rows()
    resp = client.delete(f"/api/v1/users/{world.member_a2.id}/roles/{gid}", headers=h(who))
    assert resp.status_code == 204
    after = count_rows()
    assert after["role_grants"] == before["role_grants"]  # kept for history
    assert after["audit_log"] == before["audit_log"] + 1
    fresh_session()
    grant = db.session.get(RoleGrant, gid)
    assert grant.revoked_at is not None and grant.revoked_by_id == world.users[who].id
    me = client.get("/api/v1/me", headers=bearer(world.member_a2)).get_json()
    assert me["roles"] == []
    # A second revoke is a state conflict for the admin; the secretary no longer sees the
    # person at all (their last grant in community A is gone), as in the admin pages.
    again = client.delete(f"/api/v1/users/{world.member_a2.id}/roles/{gid}", headers=h(who))
    problem(again, 409 if who == "admin" else 404)
    # The admin can grant the role again afterwards.
    regrant = client.post(
        f"/api/v1/users/{world.member_a2.id}/roles",
        json={"role": "member", "area_id": world.community_a.id},
        headers=h("admin"),
    )
    assert regrant.status_code == 201


@pytest.mark.parametrize(
    ("who", "target", "role", "status"),
    [
        ("secretary_a", "secretary_b", Role.SECRETARY, 404),
        ("secretary_a", "secretary_a", Role.SECRETARY, 403),
        ("secretary_b", "member_a", Role.MEMBER, 404),
        ("officer_street", "member_a", Role.MEMBER, 403),
        ("member_a", "member_a", Role.MEMBER, 403),
        ("grid_a1", "resident_a", Role.RESIDENT, 403),
    ],
)
def test_revoke_role_refused(client, world, h, who, target, role, status):
    user = world.users[target]
    gid = _grant_id(user, role)
    before = count_rows()
    problem(client.delete(f"/api/v1/users/{user.id}/roles/{gid}", headers=h(who)), status)
    assert count_rows() == before
    fresh_session()
    assert (
        db.session.execute(sa.select(RoleGrant.revoked_at).where(RoleGrant.id == gid)).scalar_one()
        is None
    )


def test_revoke_grant_of_another_user_is_404(client, world, h):
    gid = _grant_id(world.member_b, Role.MEMBER)
    before = count_rows()
    problem(
        client.delete(f"/api/v1/users/{world.member_a.id}/roles/{gid}", headers=h("admin")), 404
    )
    problem(
        client.delete(f"/api/v1/users/{world.member_a.id}/roles/999999", headers=h("admin")), 404
    )
    assert count_rows() == before


# --- envelopes shared by every endpoint ----------------------------------------------------------

WRITE_ENDPOINTS = [
    ("POST", "/api/v1/areas"),
    ("POST", "/api/v1/users"),
    ("POST", "/api/v1/users/{uid}/roles"),
    ("POST", "/api/v1/auth/token"),
]


@pytest.mark.parametrize(("method", "path"), WRITE_ENDPOINTS)
@pytest.mark.parametrize(
    "payload", ["{not json", '{"name": ', "\x00\x01", '{"a": 1,}', "[1, 2"], ids=repr
)
def test_malformed_json_is_400(client, world, h, method, path, payload):
    before = count_rows()
    resp = client.open(
        path.format(uid=world.member_a.id),
        method=method,
        data=payload,
        content_type="application/json",
        headers=h("admin"),
    )
    problem(resp, 400)
    assert count_rows() == before


@pytest.mark.parametrize(("method", "path"), WRITE_ENDPOINTS)
@pytest.mark.parametrize("payload", ["[]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_refused(client, world, h, method, path, payload):
    before = count_rows()
    resp = client.open(
        path.format(uid=world.member_a.id),
        method=method,
        data=payload,
        content_type="application/json",
        headers=h("admin"),
    )
    field_errors(resp, "_schema")
    assert count_rows() == before


def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.endswith("openapi.json"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method


def _concrete(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "1", rule.rule)


def test_every_protected_endpoint_needs_a_token(app, client, world):
    checked = 0
    before = count_rows()
    for rule, method in _api_rules(app):
        view = app.view_functions[rule.endpoint]
        if getattr(view, "_public", False):
            continue
        for headers in ({}, {"Authorization": "Bearer not-a-real-token"}):
            resp = client.open(_concrete(rule), method=method, json={}, headers=headers)
            body = problem(resp, 401)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer"), rule.rule
            assert body["title"] == "Unauthorized"
        checked += 1
    assert checked >= 7  # me, areas x3, users x2, roles x2, token delete
    assert count_rows() == before


def test_unknown_api_path_and_method(client, world, h):
    problem(client.get("/api/v1/nothing-here", headers=h("admin")), 404)
    resp = client.put("/api/v1/me", json={}, headers=h("admin"))
    problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


# --- OpenAPI -------------------------------------------------------------------------------------


def test_openapi_documents_every_api_path(app, client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Volunteer Market API"
    documented = {
        (path, method.upper())
        for path, ops in spec["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }
    registered = {
        (re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule), method)
        for rule, method in _api_rules(app)
    }
    assert registered, "no API rules found"
    missing = registered - documented
    assert not missing, f"undocumented: {sorted(missing)}"
    for path, _method in documented:
        assert path.startswith("/api/v1/"), path
    op_ids = [
        op["operationId"]
        for ops in spec["paths"].values()
        for op in ops.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(op_ids) == len(set(op_ids))
    assert "Problem" in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_openapi_schemas_for_foundation_paths(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/auth/token", "post"),
        ("/api/v1/auth/token", "delete"),
        ("/api/v1/me", "get"),
        ("/api/v1/areas", "post"),
        ("/api/v1/areas", "get"),
        ("/api/v1/areas/{area_id}", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{user_id}", "get"),
        ("/api/v1/users/{user_id}/roles", "post"),
        ("/api/v1/users/{user_id}/roles/{grant_id}", "delete"),
    ]:
        assert method in paths[path], (path, method)
    post_users = paths["/api/v1/users"]["post"]
    assert "requestBody" in post_users and "201" in post_users["responses"]
    assert "per_page" in {p["name"] for p in paths["/api/v1/areas"]["get"]["parameters"]}


def test_non_integer_id_is_problem_404(client, world, h):
    for path in ("/api/v1/areas/abc", "/api/v1/users/abc", "/api/v1/users/1/roles/x"):
        resp = client.get(path, headers=h("admin"))
        problem(resp, 404)
        assert "<html" not in resp.get_data(as_text=True).lower()
