"""Login by phone number, Chinese usernames, a secretary's password reset (must change
at next login), and clear validation messages (issue 18, item 3 and 4)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Role, User

from ..conftest import csrf_token, login, post_form
from ..factories import PASSWORD, bearer, make_user
from .conftest import counts, user_state


def token(client, name: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": name, "password": password})


# --- login by phone ---------------------------------------------------------------------


@pytest.mark.parametrize("written", ["13712349999", "137 1234 9999", "+86 137-1234-9999"])
def test_api_login_by_phone(client, world, written):
    resp = token(client, written)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["user"]["username"] == "resident_b"


def test_page_login_by_phone(client, world):
    login(client, "13712349999")
    assert "resident_b" in client.get("/profile").get_data(as_text=True)


@pytest.mark.parametrize("name", ["13712349998", "1371234999", "resident_x"])
def test_unknown_phone_or_name_is_the_generic_401(client, world, name):
    resp = token(client, name)
    assert resp.status_code == 401
    assert resp.get_json()["detail"] == "Invalid username or password."


def test_wrong_password_by_phone(client, world):
    assert token(client, "13712349999", "wrong-password").status_code == 401
    page = client.post(
        "/login",
        data={"username": "13712349999", "password": "nope", "csrf_token": csrf_token(client)},
    )
    assert page.status_code == 401


def test_chinese_username_and_display_name(client, world):
    headers = bearer(world.secretary_a)
    body = {"username": "张三", "password": "long-enough-1", "display_name": "张三丰"}
    resp = client.post("/api/v1/users", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["username"] == "张三"
    assert token(client, "张三", "long-enough-1").status_code == 201


@pytest.mark.parametrize("username", ["张", "13800138000", "a b", "ab", "x" * 65])
def test_bad_usernames_get_a_clear_message(client, world, username):
    body = {"username": username, "password": "long-enough-1", "display_name": "X"}
    headers = bearer(world.admin)
    before = counts()
    resp = client.post("/api/v1/users", json=body, headers=headers)
    assert resp.status_code == 422
    (message,) = resp.get_json()["errors"]["username"]
    assert "pattern" not in message and "letters" in message
    assert counts() == before


def test_phone_is_normalised_and_unique(client, world):
    headers = bearer(world.admin)
    body = {"username": "new.one", "password": "long-enough-1", "display_name": "新"}
    resp = client.post("/api/v1/users", json={**body, "phone": "139-0000-0002"}, headers=headers)
    assert resp.status_code == 201
    assert resp.get_json()["phone"] == "13900000002"
    before = counts()
    again = {**body, "username": "new.two", "phone": "+8613900000002"}
    resp = client.post("/api/v1/users", json=again, headers=headers)
    assert resp.status_code == 409
    assert resp.get_json()["errors"] == {"phone": ["This phone number belongs to another account."]}
    bad = client.post("/api/v1/users", json={**again, "phone": "0271234"}, headers=headers)
    assert bad.status_code == 422
    assert "11 digits" in bad.get_json()["errors"]["phone"][0]
    assert counts() == before


def test_user_form_messages_are_clear_in_chinese(client, world):
    login(client, "admin")
    resp = post_form(
        client,
        "/admin/users",
        {"username": "1234567", "password": "short", "display_name": "甲", "phone": "abc"},
        token_from="/admin/users",
    )
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "不能全是数字" in page
    assert "请输入有效的手机号" in page
    assert "至少 8 个字符" in page
    assert "does not match" not in page and "格式不正确" not in page


# --- password reset ---------------------------------------------------------------------


def reset(client, actor, user, password="reset-pass-1"):
    return client.post(
        f"/api/v1/users/{user.id}/password-reset", json={"password": password}, headers=actor
    )


def test_secretary_resets_and_the_person_must_change(client, world):
    member_token = bearer(world.member_a)
    resp = reset(client, bearer(world.secretary_a), world.member_a)
    assert resp.status_code == 204
    # the old password and the old token are dead
    assert token(client, "member_a").status_code == 401
    assert client.get("/api/v1/me", headers=member_token).status_code == 401
    # signing in with the new password works by phone, but only /me and the change
    issued = token(client, "13900000001", "reset-pass-1")
    assert issued.status_code == 201
    assert issued.get_json()["user"]["must_change_password"] is True
    headers = {"Authorization": f"Bearer {issued.get_json()['token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    blocked = client.get("/api/v1/wallet", headers=headers)
    assert blocked.status_code == 403
    wrong = client.post(
        "/api/v1/me/password",
        json={"old_password": "nope", "new_password": "my-own-pass"},
        headers=headers,
    )
    assert wrong.status_code == 401
    short = client.post(
        "/api/v1/me/password",
        json={"old_password": "reset-pass-1", "new_password": "short"},
        headers=headers,
    )
    assert short.status_code == 422
    changed = client.post(
        "/api/v1/me/password",
        json={"old_password": "reset-pass-1", "new_password": "my-own-pass"},
        headers=headers,
    )
    assert changed.status_code == 204
    assert client.get("/api/v1/wallet", headers=headers).status_code == 200
    db.session.rollback()
    user = db.session.get(User, world.member_a.id)
    assert user.must_change_password is False


def test_reset_page_then_the_login_leads_to_the_password_form(client, world):
    login(client, "secretary_a")
    page = client.get(f"/admin/users/{world.member_a.id}").get_data(as_text=True)
    assert 'value="reset_password"' in page
    resp = post_form(
        client,
        f"/admin/users/{world.member_a.id}",
        {"action": "reset_password", "password": "reset-pass-1"},
        token_from=f"/admin/users/{world.member_a.id}",
    )
    assert resp.status_code == 302
    other = type(client)(client.application)
    login(other, "member_a", "reset-pass-1")
    home = other.get("/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/profile")
    assert other.get("/points").status_code == 302
    changed = post_form(
        other,
        "/profile",
        {"action": "password", "old_password": "reset-pass-1", "new_password": "my-own-pass"},
        token_from="/profile",
    )
    assert changed.status_code == 302
    again = type(client)(client.application)
    login(again, "13900000001", "my-own-pass")
    assert again.get("/").status_code == 200


def test_reset_form_errors(client, world):
    login(client, "secretary_a")
    before = user_state()
    resp = post_form(
        client,
        f"/admin/users/{world.member_a.id}",
        {"action": "reset_password", "password": "short"},
        token_from=f"/admin/users/{world.member_a.id}",
    )
    assert resp.status_code == 422
    assert "至少 8 个字符" in resp.get_data(as_text=True)
    assert user_state() == before


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("secretary_b", "member_a", 404),  # another community: not even visible
        ("secretary_c", "resident_a", 404),
        ("member_a", "member_a2", 404),
        ("grid_a1", "resident_a", 403),  # sees the resident, may not reset
        ("officer_street", "member_a", 403),
        ("secretary_a", "secretary_a", 403),  # one's own password is changed, not reset
        ("secretary_a", "grid_a1", 204),
        ("admin", "secretary_b", 204),
    ],
)
def test_who_may_reset(client, world, who, target, status):
    before = user_state()
    resp = reset(client, bearer(world.users[who]), world.users[target])
    assert resp.status_code == status
    if status != 204:
        assert user_state() == before


def test_secretary_cannot_reset_a_secretary_or_a_person_also_elsewhere(client, world):
    deputy = make_user("deputy_a", (Role.SECRETARY, world.community_a))
    both = make_user("both", (Role.MEMBER, world.community_a), (Role.MEMBER, world.community_b))
    before = user_state()
    for target in (deputy, both):
        assert reset(client, bearer(world.secretary_a), target).status_code == 403
    assert user_state() == before


@pytest.mark.parametrize(
    "body",
    [{}, {"password": "short"}, {"password": None}, {"password": "x" * 257}, {"pw": "long-enough"}],
)
def test_reset_bad_input(client, world, body):
    before = user_state()
    resp = client.post(
        f"/api/v1/users/{world.member_a.id}/password-reset",
        json=body,
        headers=bearer(world.secretary_a),
    )
    assert resp.status_code == 422
    assert user_state() == before


def test_anonymous_reset_is_401(client, world):
    resp = client.post(
        f"/api/v1/users/{world.member_a.id}/password-reset", json={"password": "long-enough"}
    )
    assert resp.status_code == 401


def test_reset_is_audited_and_notified(client, world):
    assert reset(client, bearer(world.secretary_a), world.member_a).status_code == 204
    db.session.rollback()
    audit = db.session.execute(
        sa.text("SELECT actor_id FROM audit_log WHERE action = 'user.password_reset'")
    ).all()
    assert audit == [(world.secretary_a.id,)]
    kinds = db.session.execute(
        sa.text("SELECT kind FROM notifications WHERE user_id = :u"), {"u": world.member_a.id}
    ).scalars()
    assert "user.password_reset" in list(kinds)
