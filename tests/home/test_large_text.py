"""Large-text mode (大字, 适老化): switched from the top bar or the profile, stored on
the signed-in person, remembered by a cookie for pages without sign-in (/rate); bad
input is a 4xx that changes nothing; the redirect never leaves the site."""

from __future__ import annotations

from volunteer_market.extensions import db
from volunteer_market.models import User

from ..conftest import csrf_token, login, post_form

LARGE = '<html lang="zh-CN" class="large-text">'


def _stored(username: str) -> bool:
    db.session.remove()
    return db.session.execute(
        db.select(User.large_text).where(User.username == username)
    ).scalar_one()


def test_the_top_bar_switch_stores_it_and_returns_to_the_page(client, world):
    login(client, "resident_a")
    assert LARGE not in client.get("/").get_data(as_text=True)
    resp = post_form(client, "/text-size", {"size": "large", "next": "/needs?page=1"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/needs?page=1"
    assert "vm_text=large" in resp.headers["Set-Cookie"]
    assert _stored("resident_a") is True
    html = client.get("/").get_data(as_text=True)
    assert LARGE in html and 'aria-pressed="true"' in html
    # switched off again
    resp = post_form(client, "/text-size", {"size": "normal", "next": "/"})
    assert resp.status_code == 302 and _stored("resident_a") is False
    assert LARGE not in client.get("/").get_data(as_text=True)


def test_the_stored_choice_follows_the_person_to_another_browser(app, client, world):
    login(client, "member_a")
    post_form(client, "/text-size", {"size": "large"})
    other = app.test_client()
    login(other, "member_a")
    assert LARGE in other.get("/profile").get_data(as_text=True)


def test_anonymous_rate_page_uses_the_cookie(client, world):
    assert LARGE not in client.get("/rate").get_data(as_text=True)
    token = csrf_token(client, "/rate")
    resp = client.post("/text-size", data={"size": "large", "next": "/rate", "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/rate"
    assert LARGE in client.get("/rate").get_data(as_text=True)
    assert LARGE in client.get("/login").get_data(as_text=True)


def test_the_profile_form(client, world):
    login(client, "member_a")
    resp = post_form(
        client, "/profile", {"action": "text_size", "size": "large"}, token_from="/profile"
    )
    assert resp.status_code == 302 and _stored("member_a") is True
    assert "vm_text=large" in resp.headers["Set-Cookie"]
    html = client.get("/profile").get_data(as_text=True)
    assert 'value="large" checked' in html


def test_bad_input_is_refused_and_changes_nothing(client, world):
    login(client, "member_a")
    for data in ({"size": "huge"}, {}, {"size": ""}, {"size": "large" * 1000}):
        resp = post_form(client, "/text-size", data)
        assert resp.status_code == 400, data
        assert "请选择“大字”或“标准字”。" in resp.get_data(as_text=True)
        assert "Set-Cookie" not in resp.headers or "vm_text" not in resp.headers["Set-Cookie"]
        resp = post_form(client, "/profile", {"action": "text_size", **data}, token_from="/profile")
        assert resp.status_code == 422, data
        assert "请选择“大字”或“标准字”。" in resp.get_data(as_text=True)
    assert _stored("member_a") is False


def test_without_csrf_it_is_refused(client, world):
    login(client, "member_a")
    assert client.post("/text-size", data={"size": "large"}).status_code == 400
    assert _stored("member_a") is False


def test_the_redirect_never_leaves_the_site(client, world):
    login(client, "member_a")
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        resp = post_form(client, "/text-size", {"size": "large", "next": bad})
        assert resp.status_code == 302
        assert resp.headers["Location"] == "/", bad


def test_english_labels(client, world):
    login(client, "member_a")
    html = client.get("/profile?lang=en").get_data(as_text=True)
    assert "Large text" in html and "大字" not in html
