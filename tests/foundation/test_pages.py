"""HTML pages: login/logout, session lifetime, CSRF on every form route, admin pages, privacy."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Area, Role, RoleGrant, User

from ..conftest import csrf_token, login, post_form
from ..factories import PASSWORD
from .conftest import count_rows, fresh_session

GENERIC_ERROR = "用户名或密码错误。"


def text(resp) -> str:
    return resp.get_data(as_text=True)


def signed_in(client) -> bool:
    """True if ``client``'s cookie opens the home page (not a redirect to the login)."""
    resp = client.get("/")
    if resp.status_code == 200:
        return True
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login"), resp
    return False


def snapshot() -> dict[str, list[str]]:
    """Every row of every table, read on a fresh connection."""
    with db.engine.connect() as conn:
        return {
            t.name: sorted(repr(tuple(r)) for r in conn.execute(t.select()))
            for t in db.metadata.sorted_tables
        }


# --- login -------------------------------------------------------------------------------------


def test_login_page(client, world):
    resp = client.get("/login")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    body = text(resp)
    assert 'name="csrf_token"' in body and 'name="username"' in body
    assert 'type="password"' in body


def test_good_login_redirects_home(client, world):
    login(client, "member_a")
    resp = client.get("/")
    assert resp.status_code == 200
    assert "member_a" in text(resp)
    cookie = resp.request.headers.get("Cookie", "")
    assert "session=" in cookie


def test_session_cookie_flags(client, world):
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login", data={"username": "member_a", "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 302
    set_cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie


def _bad_login(client, username, password):
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    body = re.sub(r'name="csrf_token" value="[^"]+"', "", text(resp))
    return resp, body.replace(username, "USERNAME")


def test_bad_login_is_generic(app, client, world):
    with atomic():
        db.session.get(User, world.member_a2.id).is_active = False
    before = count_rows()
    wrong_pw, body_wrong = _bad_login(client, "member_a", "not-the-password")
    unknown, body_unknown = _bad_login(client, "nobody_at_all", "not-the-password")
    inactive, body_inactive = _bad_login(client, "member_a2", PASSWORD)
    for resp in (wrong_pw, unknown, inactive):
        assert resp.status_code == 401
        assert GENERIC_ERROR in text(resp)
    assert body_wrong == body_unknown == body_inactive
    assert not signed_in(client)
    assert count_rows() == before


def test_login_with_empty_fields_is_refused(client, world):
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"csrf_token": token})
    assert resp.status_code == 401
    assert GENERIC_ERROR in text(resp)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/users", "/admin/users"),
        ("/profile?tab=1", "/profile?tab=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("javascript:alert(1)", "/"),
        ("http:/evil.example", "/"),
        ("", "/"),
    ],
)
def test_next_redirects_only_to_local_paths(client, world, target, expected):
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": target},
    )
    assert resp.status_code == 302
    assert resp.headers["Location"] == expected


def test_login_required_round_trip_keeps_next(client, world):
    resp = client.get("/admin/users")
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith("/login?next=")
    page = client.get(location)
    assert 'name="next" value="/admin/users"' in text(page)
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/admin/users",
        },
    )
    assert resp.headers["Location"] == "/admin/users"


def test_signed_in_user_visiting_login_goes_home(client, world):
    login(client, "member_a")
    resp = client.get("/login")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


# --- logout and session lifetime --------------------------------------------------------------


def test_logout_is_post_only(client, world):
    login(client, "member_a")
    resp = client.get("/logout")
    assert resp.status_code == 405
    assert signed_in(client)


def test_logout_invalidates_a_copied_cookie(app, client, world):
    login(client, "member_a")
    copied = client.get_cookie("session").value
    assert signed_in(client)
    version = world.member_a.session_version

    resp = post_form(client, "/logout", {})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert not signed_in(client)

    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert not signed_in(thief)
    assert thief.get("/profile").status_code == 302
    fresh_session()
    assert db.session.get(User, world.member_a.id).session_version == version + 1


def test_logout_ends_sessions_on_other_devices(app, client, world):
    other = app.test_client()
    login(client, "member_a")
    login(other, "member_a")
    assert signed_in(other)
    post_form(client, "/logout", {})
    assert not signed_in(other)
    # Signing in again works.
    login(other, "member_a")
    assert signed_in(other)


def _now() -> float:
    return datetime.now(UTC).timestamp()


@pytest.mark.parametrize(
    ("idle", "age", "still_in"),
    [
        (timedelta(minutes=29), timedelta(hours=1), True),
        (timedelta(minutes=31), timedelta(hours=1), False),
        (timedelta(minutes=1), timedelta(hours=11, minutes=50), True),
        (timedelta(minutes=1), timedelta(hours=12, minutes=1), False),
    ],
)
def test_idle_and_absolute_timeouts(client, world, idle, age, still_in):
    login(client, "member_a")
    with client.session_transaction() as sess:
        sess["_last_seen"] = _now() - idle.total_seconds()
        sess["_login_at"] = _now() - age.total_seconds()
    assert signed_in(client) is still_in
    if not still_in:
        with client.session_transaction() as sess:
            assert "_user_id" not in sess


def test_activity_extends_the_idle_window(client, world):
    login(client, "member_a")
    with client.session_transaction() as sess:
        sess["_last_seen"] = _now() - timedelta(minutes=20).total_seconds()
    assert signed_in(client)
    with client.session_transaction() as sess:
        assert _now() - sess["_last_seen"] < 60


def test_password_change_ends_other_sessions(app, client, world):
    other = app.test_client()
    login(client, "member_a")
    login(other, "member_a")
    resp = post_form(
        client,
        "/profile",
        {"action": "password", "old_password": PASSWORD, "new_password": "a-new-password"},
        token_from="/profile",
    )
    assert resp.status_code == 302
    assert not signed_in(other)
    assert signed_in(client)  # issue 20: the browser that changed it stays signed in
    login(other, "member_a", "a-new-password")


def test_wrong_old_password_changes_nothing(client, world):
    login(client, "member_a")
    before = snapshot()
    resp = post_form(
        client,
        "/profile",
        {"action": "password", "old_password": "wrong", "new_password": "a-new-password"},
        token_from="/profile",
    )
    assert resp.status_code == 422
    assert "原密码不正确" in text(resp)
    assert snapshot() == before


def test_profile_language(client, world):
    login(client, "member_a")
    resp = post_form(
        client, "/profile", {"action": "language", "locale": "en"}, token_from="/profile"
    )
    assert resp.status_code == 302
    fresh_session()
    assert db.session.get(User, world.member_a.id).locale == "en"
    assert "My profile" in text(client.get("/profile"))
    bad = post_form(
        client, "/profile", {"action": "language", "locale": "fr"}, token_from="/profile"
    )
    assert bad.status_code == 422


# --- CSRF on every form route -------------------------------------------------------------------


def _form_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule.startswith("/static"):
            continue
        methods = (rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}
        for method in sorted(methods):
            yield rule, method


def test_csrf_rejected_on_every_form_route(app, client, world):
    other = app.test_client()
    login(other, "member_b")
    foreign_token = csrf_token(other, "/")  # valid, but for another session

    login(client, "admin")
    checked = []
    before = snapshot()
    for rule, method in _form_rules(app):
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "1", rule.rule)
        for data in (
            {},
            {"csrf_token": "bogus"},
            {"csrf_token": foreign_token},
        ):
            data = {**data, "action": "grant", "role": "member", "name": "x", "username": "x"}
            resp = client.open(path, method=method, data=data)
            assert resp.status_code == 400, (method, rule.rule, resp.status_code)
            assert resp.mimetype == "text/html"
            assert "表单已过期或无效" in text(resp)
        checked.append((method, rule.rule))
    assert snapshot() == before  # not one row changed anywhere
    assert ("POST", "/login") in checked
    assert ("POST", "/logout") in checked
    assert ("POST", "/admin/users") in checked
    assert ("POST", "/admin/users/<int:user_id>") in checked
    assert signed_in(client)  # the refused /logout did not sign us out


def test_csrf_token_is_accepted(client, world):
    """The same forms go through with a valid token (the refusals above are about CSRF)."""
    login(client, "admin")
    before = count_rows()
    resp = post_form(
        client,
        "/admin/areas",
        {"name": "新区", "kind": "district", "parent_id": ""},
        token_from="/admin/areas",
    )
    assert resp.status_code == 302
    assert count_rows()["areas"] == before["areas"] + 1


# --- admin: areas ------------------------------------------------------------------------------


def test_admin_areas_page(client, world):
    login(client, "admin")
    resp = client.get("/admin/areas")
    assert resp.status_code == 200
    body = text(resp)
    for name in ("汉阳区", "龙阳街", "龙湖东岸社区", "紫荆花社区"):
        assert name in body
    assert 'name="csrf_token"' in body


@pytest.mark.parametrize("who", ["member_a", "secretary_a", "officer_district", "resident_a"])
def test_areas_page_is_for_admins(client, world, who):
    login(client, who)
    assert client.get("/admin/areas").status_code == 403
    token = csrf_token(client, "/")
    before = count_rows()
    resp = client.post(
        "/admin/areas", data={"name": "x", "kind": "district", "parent_id": "", "csrf_token": token}
    )
    assert resp.status_code == 403
    assert resp.mimetype == "text/html"
    assert count_rows() == before


@pytest.mark.parametrize(
    ("form", "field_error"),
    [
        ({"name": "", "kind": "district", "parent_id": ""}, "name"),
        ({"name": "网格X", "kind": "grid", "parent_id": ""}, "kind"),
        ({"name": "网格X", "kind": "village", "parent_id": ""}, "kind"),
        ({"name": "网格X", "kind": "grid", "parent_id": "abc"}, "parent_id"),
    ],
)
def test_area_form_errors(client, world, form, field_error):
    login(client, "admin")
    before = snapshot()
    resp = post_form(client, "/admin/areas", form, token_from="/admin/areas")
    assert resp.status_code == 422
    assert 'class="field-errors"' in text(resp)
    assert snapshot() == before


def test_area_form_duplicate(client, world):
    login(client, "admin")
    before = snapshot()
    resp = post_form(
        client,
        "/admin/areas",
        {"name": "第一网格", "kind": "grid", "parent_id": str(world.community_a.id)},
        token_from="/admin/areas",
    )
    assert resp.status_code == 409
    assert 'class="field-errors"' in text(resp)
    assert snapshot() == before


# --- admin: users ------------------------------------------------------------------------------


def _listed_usernames(body: str) -> set[str]:
    return set(re.findall(r'<span class="muted">([A-Za-z0-9_.\-]+) ·', body))


def test_users_page_admin_sees_everyone(client, world):
    login(client, "admin")
    resp = client.get("/admin/users")
    assert resp.status_code == 200
    assert _listed_usernames(text(resp)) == set(world.users)
    # issue 20: the admin sees masked personal data only (DESIGN.md "Privacy")
    assert "137****1234" in text(resp) and "13712341234" not in text(resp)


def test_users_page_secretary_sees_own_community(client, world):
    login(client, "secretary_a")
    resp = client.get("/admin/users")
    assert resp.status_code == 200
    listed = _listed_usernames(text(resp))
    assert listed == {
        "secretary_a",
        "grid_a1",
        "member_a",
        "member_a2",
        "member_a3",
        "resident_a",
        "resident_a2",
    }
    assert "13712341234" in text(resp)  # unmasked for the community's secretary
    assert "13712349999" not in text(resp)  # community B's resident is not listed


@pytest.mark.parametrize("who", ["member_a", "resident_a", "grid_a1", "officer_street"])
def test_users_page_forbidden(client, world, who):
    login(client, who)
    assert client.get("/admin/users").status_code == 403
    before = snapshot()
    resp = post_form(
        client,
        "/admin/users",
        {"username": "intruder", "password": "long-enough", "display_name": "X"},
    )
    assert resp.status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("who", ["admin", "secretary_a"])
def test_create_user_form(client, world, who):
    login(client, who)
    before = count_rows()
    resp = post_form(
        client,
        "/admin/users",
        {
            "username": "form.user",
            "password": "long-enough-1",
            "display_name": "表单用户",
            "phone": "13800001111",
            "address": "",
            "household_tags": "",
            "home_unit": "",
        },
        token_from="/admin/users",
    )
    assert resp.status_code == 302
    fresh_session()
    user = db.session.execute(sa.select(User).where(User.username == "form.user")).scalar_one()
    assert resp.headers["Location"] == f"/admin/users/{user.id}"
    assert user.address is None  # empty optional fields are stored as NULL
    assert user.created_by_id == world.users[who].id
    assert count_rows()["users"] == before["users"] + 1
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200 and "表单用户" in text(page)


@pytest.mark.parametrize(
    ("form", "field", "status"),
    [
        ({"username": "ab"}, "username", 422),
        ({"password": "short"}, "password", 422),
        ({"display_name": ""}, "display_name", 422),
        ({"phone": "not a phone"}, "phone", 422),
        ({"username": "member_a"}, "username", 409),
    ],
)
def test_create_user_form_errors(client, world, form, field, status):
    login(client, "admin")
    good = {"username": "form.user", "password": "long-enough-1", "display_name": "表单用户"}
    before = snapshot()
    resp = post_form(client, "/admin/users", {**good, **form}, token_from="/admin/users")
    assert resp.status_code == status
    body = text(resp)
    # the error is shown right after the offending input
    pattern = rf'name="{field}"[^>]*>\s*<ul class="field-errors"><li>[^<]+</li>'
    assert re.search(pattern, body), body[-3000:]
    assert "long-enough-1" not in body  # the password is never echoed
    assert snapshot() == before


@pytest.mark.parametrize(
    ("lang", "form", "field", "shown", "not_shown"),
    [
        # the schema's own messages (issue 18: what to type, never "does not match"),
        # a service's field error
        ("zh_CN", {"password": "short"}, "password", "至少 8 个字符。", "At least"),
        ("en", {"password": "short"}, "password", "At least 8 characters.", "至少"),
        (
            "zh_CN",
            {"username": "ab"},
            "username",
            "用户名为 3 到 64 个字母、汉字、数字或 _ . -（中文名可以是 2 个字），不能全是数字。",
            "does not match",
        ),
        (
            "en",
            {"username": "ab"},
            "username",
            "A username has 3 to 64 letters, Chinese characters, digits, _ . or - "
            "(a Chinese name may have 2), and not only digits.",
            "pattern",
        ),
        (
            "zh_CN",
            {"phone": "not a phone"},
            "phone",
            "请输入有效的手机号（11 位数字，如 13812345678）。",
            "pattern",
        ),
        (
            "en",
            {"phone": "not a phone"},
            "phone",
            "Enter a valid mobile number (11 digits, e.g. 13812345678).",
            "pattern",
        ),
        ("zh_CN", {"username": "member_a"}, "username", "已被使用。", "Taken."),
        ("en", {"username": "member_a"}, "username", "Taken.", "已被使用"),
    ],
)
def test_create_user_form_errors_are_in_the_page_language(
    client, world, lang, form, field, shown, not_shown
):
    login(client, "admin")
    good = {"username": "form.user", "password": "long-enough-1", "display_name": "表单用户"}
    before = snapshot()
    resp = post_form(
        client, f"/admin/users?lang={lang}", {**good, **form}, token_from="/admin/users"
    )
    assert resp.status_code in (409, 422)
    body = text(resp)
    pattern = rf'name="{field}"[^>]*>\s*<ul class="field-errors"><li>{re.escape(shown)}</li>'
    assert re.search(pattern, body), body[-3000:]
    assert not_shown not in body
    assert snapshot() == before


# --- admin: user detail, grants -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("viewer", "status", "phone"),
    [
        ("admin", 200, "137****1234"),  # issue 20: the admin sees masked data only
        ("secretary_a", 200, "13712341234"),
        ("grid_a1", 200, "13712341234"),
        ("officer_street", 200, "137****1234"),
        ("secretary_b", 404, None),
        ("member_a", 404, None),
        ("resident_a2", 404, None),
    ],
)
def test_user_detail_privacy(client, world, viewer, status, phone):
    login(client, viewer)
    resp = client.get(f"/admin/users/{world.resident_a.id}")
    assert resp.status_code == status
    body = text(resp)
    if phone is None:
        assert "13712341234" not in body and "137****1234" not in body
        assert "龙湖东岸 3 栋" not in body and "户情" not in body
        return
    assert phone in body
    if "*" in phone:
        assert "13712341234" not in body
        assert "***" in body and "龙湖东岸 3 栋" not in body and "3 栋" not in body
        assert "空巢" not in body and "空*" not in body and "独居" not in body
    else:
        assert "龙湖东岸 3 栋 401" in body and "空巢,独居" in body


def _grants(user_id: int) -> list[tuple[str, int | None, bool]]:
    fresh_session()
    rows = db.session.execute(
        sa.select(RoleGrant.role, RoleGrant.area_id, RoleGrant.revoked_at.is_(None))
        .where(RoleGrant.user_id == user_id)
        .order_by(RoleGrant.id)
    ).all()
    return [(r.value, a, active) for r, a, active in rows]


def test_secretary_grants_and_revokes_in_own_community(client, world):
    login(client, "secretary_a")
    uid = world.member_a2.id
    path = f"/admin/users/{uid}"
    resp = post_form(
        client,
        path,
        {"action": "grant", "role": "grid_worker", "area_id": str(world.areas["grid_a2"].id)},
        token_from=path,
    )
    assert resp.status_code == 302 and resp.headers["Location"] == path
    assert _grants(uid) == [
        ("member", world.community_a.id, True),
        ("grid_worker", world.areas["grid_a2"].id, True),
    ]
    gid = db.session.execute(
        sa.select(RoleGrant.id).where(RoleGrant.user_id == uid, RoleGrant.role == Role.GRID_WORKER)
    ).scalar_one()
    resp = post_form(client, path, {"action": "revoke", "grant_id": str(gid)}, token_from=path)
    assert resp.status_code == 302
    assert _grants(uid)[1] == ("grid_worker", world.areas["grid_a2"].id, False)


@pytest.mark.parametrize(
    ("who", "target", "form", "status"),
    [
        (
            "secretary_b",
            "member_a",
            {"action": "grant", "role": "member", "area": "community_b"},
            404,
        ),
        ("secretary_b", "member_a", {"action": "revoke", "grant": "member_a"}, 404),
        (
            "secretary_a",
            "member_a",
            {"action": "grant", "role": "secretary", "area": "community_a"},
            403,
        ),
        (
            "secretary_a",
            "member_a",
            {"action": "grant", "role": "member", "area": "community_b"},
            403,
        ),
        ("secretary_a", "secretary_a", {"action": "revoke", "grant": "secretary_a"}, 403),
        (
            "officer_street",
            "member_a",
            {"action": "grant", "role": "member", "area": "community_b"},
            403,
        ),
        (
            "member_a",
            "member_a2",
            {"action": "grant", "role": "member", "area": "community_a"},
            404,
        ),
        ("secretary_a", "member_a", {"action": "revoke", "grant": "member_b"}, 422),
        ("secretary_a", "member_a", {"action": "revoke", "grant_id": "x"}, 422),
        ("secretary_a", "member_a", {"action": "revoke", "grant_id": str(10**20)}, 422),
        ("secretary_a", "member_a", {"action": "revoke", "grant_id": "²"}, 422),
        ("secretary_a", "member_a", {"action": "dance"}, 422),
        (
            "secretary_a",
            "member_a",
            {"action": "grant", "role": "king", "area": "community_a"},
            422,
        ),
        (
            "secretary_a",
            "member_a",
            {"action": "grant", "role": "member", "area_id": "999999"},
            422,
        ),
        (
            "secretary_a",
            "member_a",
            {"action": "grant", "role": "member", "area": "community_a"},
            409,
        ),
    ],
)
def test_grant_and_revoke_refused(client, world, who, target, form, status):
    user = world.users[target]
    data = {k: v for k, v in form.items() if k in ("action", "role", "area_id", "grant_id")}
    if "area" in form:
        data["area_id"] = str(world.areas[form["area"]].id)
    if "grant" in form:
        data["grant_id"] = str(world.users[form["grant"]].grants[0].id)
    login(client, who)
    before = snapshot()
    resp = post_form(client, f"/admin/users/{user.id}", data)
    assert resp.status_code == status
    assert resp.mimetype == "text/html"
    assert snapshot() == before


def test_unknown_user_page_is_404(client, world):
    login(client, "admin")
    assert client.get("/admin/users/999999").status_code == 404


# --- error pages and headers ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/no/such/page", "/admin/nothing", "/static/missing.css"])
def test_html_404(client, world, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    body = text(resp)
    assert "<html" in body and "404" in body


def test_html_405(client, world):
    resp = client.delete("/login")
    assert resp.status_code == 405
    assert resp.mimetype == "text/html"
    assert "POST" in resp.headers["Allow"]


@pytest.mark.parametrize("path", ["/login", "/no/such/page", "/api/v1/me", "/api/v1/openapi.json"])
def test_security_headers(client, world, path):
    resp = client.get(path)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


def test_pages_have_no_inline_script_or_style(client, world):
    login(client, "admin")
    for path in (
        "/",
        "/profile",
        "/admin/users",
        "/admin/areas",
        f"/admin/users/{world.resident_a.id}",
    ):
        body = text(client.get(path))
        assert "<script>" not in body and "style=" not in body, path
        # no CDN: nothing is loaded or linked from another site (the profile shows the
        # person's own calendar feed address as text, which is not an asset)
        assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", body), path


def test_static_asset_is_served(client):
    with client.get("/static/style.css") as resp:
        assert resp.status_code == 200
        assert resp.mimetype == "text/css"
        assert resp.get_data()


def test_home_requires_login(client, world):
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Area)) == 10
