"""Choosing channels (profile page, ``/api/v1/me/notification-channels``) and a
community's group robot (settings page, ``/api/v1/communities/{id}/webhook``):
allowed, forbidden (role, community), bad input -> 4xx and nothing changed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import AuditEntry, CommunityWebhook, NotificationPreference

from ..projects.conftest import assert_csp_clean, fresh, post, text

HOOK = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0123-SEKRIT-abcd"


@pytest.fixture
def smtp_on(app):
    app.config["SMTP_HOST"] = "smtp.example.org"


def _state() -> tuple:
    fresh()
    prefs = db.session.execute(
        sa.select(
            NotificationPreference.user_id,
            NotificationPreference.email,
            NotificationPreference.email_enabled,
        ).order_by(NotificationPreference.user_id)
    ).all()
    hooks = db.session.execute(
        sa.select(CommunityWebhook.community_id, CommunityWebhook.url).order_by(
            CommunityWebhook.community_id
        )
    ).all()
    return prefs, hooks


# --- my channels: API ---------------------------------------------------------------------


def test_channels_api_defaults_and_choosing_email(api, world, smtp_on):
    path = "/api/v1/me/notification-channels"
    assert api.get("member_a", path).get_json() == {
        "channels": ["in_app"],
        "email": None,
        "email_available": True,
    }
    resp = api.put("member_a", path, json={"channels": ["email"], "email": "a@example.org"})
    assert resp.status_code == 200
    assert resp.get_json() == {
        "channels": ["in_app", "email"],
        "email": "a@example.org",
        "email_available": True,
    }
    # only my own: another user still has none
    assert api.get("member_a2", path).get_json()["channels"] == ["in_app"]
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "notification_channels.set")
    ).one()
    assert entry.detail == {"email": True}  # never the address
    # turning e-mail off keeps the address for next time
    resp = api.put("member_a", path, json={"channels": ["in_app"]})
    assert resp.get_json()["channels"] == ["in_app"]
    assert resp.get_json()["email"] is None  # no address given: cleared
    resp = api.put("member_a", path, json={"channels": ["in_app"], "email": "kept@example.org"})
    assert resp.get_json() == {
        "channels": ["in_app"],
        "email": "kept@example.org",
        "email_available": True,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": ["email"]}, "email"),  # e-mail without an address
        ({"channels": ["email"], "email": None}, "email"),
        ({"channels": ["in_app"], "email": "not-an-address"}, "email"),
        ({"channels": ["in_app"], "email": "a" * 250 + "@x.org"}, "email"),
        ({"channels": ["sms"]}, "channels"),
        ({"channels": "email"}, "channels"),
        ({"channels": ["in_app", "email", "email"]}, "channels"),
        ({"email": "a@example.org"}, "channels"),
        ({"channels": ["in_app"], "role": "admin"}, "role"),
    ],
)
def test_channels_api_bad_input_changes_nothing(api, world, smtp_on, body, field):
    before = _state()
    resp = api.put("member_a", "/api/v1/me/notification-channels", json=body)
    assert resp.status_code == 422, resp.get_json()
    assert any(k.split(".")[0] == field for k in resp.get_json()["errors"])
    assert _state() == before


def test_email_cannot_be_chosen_when_the_server_sends_none(api, world):
    resp = api.put(
        "member_a",
        "/api/v1/me/notification-channels",
        json={"channels": ["email"], "email": "a@example.org"},
    )
    assert resp.status_code == 422 and "channels" in resp.get_json()["errors"]
    assert api.get("member_a", "/api/v1/me/notification-channels").get_json() == {
        "channels": ["in_app"],
        "email": None,
        "email_available": False,
    }


def test_channels_api_needs_a_token(client, world):
    assert client.get("/api/v1/me/notification-channels").status_code == 401
    resp = client.put("/api/v1/me/notification-channels", json={"channels": ["in_app"]})
    assert resp.status_code == 401


# --- my channels: profile page ------------------------------------------------------------


def test_profile_page_chooses_email(as_user, world, smtp_on):
    c = as_user("member_a")
    html = text(c.get("/profile"))
    assert "通知方式" in html and 'name="email_on"' in html
    assert_csp_clean(html)
    resp = post(c, "/profile/notification-channels", {"email_on": "1", "email": "me@example.org"})
    assert resp.status_code == 302
    html = text(c.get("/profile"))
    assert 'value="me@example.org"' in html and "checked" in html
    pref = db.session.get(NotificationPreference, world.member_a.id)
    assert pref.email_enabled and pref.email == "me@example.org"
    # another user's profile does not show my address
    assert "me@example.org" not in text(as_user("member_a2").get("/profile"))


@pytest.mark.parametrize(
    "form",
    [{"email_on": "1", "email": ""}, {"email_on": "1", "email": "nope"}, {"email": "x" * 300}],
)
def test_profile_page_bad_input_is_422_and_changes_nothing(as_user, world, smtp_on, form):
    before = _state()
    resp = post(as_user("member_a"), "/profile/notification-channels", form)
    assert resp.status_code == 422
    assert 'class="field-errors"' in text(resp)
    assert _state() == before


def test_profile_page_without_smtp_offers_no_email(as_user, world):
    html = text(as_user("member_a").get("/profile"))
    assert 'name="email_on"' not in html and "本平台未开通邮件通知" in html


# --- a community's group robot ------------------------------------------------------------


def test_webhook_api_set_masked_and_removed(api, world, caplog):
    path = f"/api/v1/communities/{world.community_a.id}/webhook"
    body = api.get("secretary_a", path).get_json()
    assert body == {
        "community_id": world.community_a.id,
        "configured": False,
        "url_masked": None,
        "updated_at": None,
        "failed_messages": 0,
    }
    resp = api.put("secretary_a", path, json={"url": HOOK})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["configured"] and body["url_masked"] == "https://qyapi.weixin.qq.com/…abcd"
    assert "SEKRIT" not in resp.get_data(as_text=True)
    assert "SEKRIT" not in api.get("admin", path).get_data(as_text=True)
    assert db.session.get(CommunityWebhook, world.community_a.id).url == HOOK
    entries = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action.like("community.webhook%"))
    ).all()
    assert [e.action for e in entries] == ["community.webhook_set"]
    assert all("SEKRIT" not in str(e.detail) for e in entries)
    assert "SEKRIT" not in caplog.text
    resp = api.put("secretary_a", path, json={"url": None})
    assert resp.get_json()["configured"] is False
    fresh()
    assert db.session.get(CommunityWebhook, world.community_a.id) is None


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("member_a", 403),  # a member of the community: wrong role
        ("resident_a", 403),
        ("grid_a1", 403),
        ("secretary_b", 404),  # another community's secretary
        ("member_b", 404),
        ("officer_other", 404),  # an officer over another street
    ],
)
def test_webhook_api_forbidden(api, world, who, status):
    set_before = api.put(
        "secretary_a", f"/api/v1/communities/{world.community_a.id}/webhook", json={"url": HOOK}
    )
    assert set_before.status_code == 200
    before = _state()
    path = f"/api/v1/communities/{world.community_a.id}/webhook"
    assert api.get(who, path).status_code == status
    resp = api.put(who, path, json={"url": HOOK.replace("abcd", "evil")})
    assert resp.status_code == status
    assert api.put(who, path, json={"url": None}).status_code == status
    assert _state() == before


def test_webhook_api_officer_over_the_community_may(api, world):
    path = f"/api/v1/communities/{world.community_a.id}/webhook"
    assert api.put("officer_street", path, json={"url": HOOK}).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=1",  # not https
        "https://example.org/cgi-bin/webhook/send?key=1",  # another host
        "https://127.0.0.1/x",
        "https://user:pw@qyapi.weixin.qq.com/x",  # userinfo
        "https://qyapi.weixin.qq.com.evil.org/x",
        "file:///etc/passwd",
        "https://qyapi.weixin.qq.com/x y",
        "https://qyapi.weixin.qq.com/\x00",
        "https://qyapi.weixin.qq.com:99999/x",
        "https://qyapi.weixin.qq.com/" + "k" * 480,
        "javascript:alert(1)",
        "",
    ],
)
def test_webhook_api_bad_url_is_422_and_changes_nothing(api, world, url):
    before = _state()
    path = f"/api/v1/communities/{world.community_a.id}/webhook"
    resp = api.put("secretary_a", path, json={"url": url})
    if url == "":  # empty removes: nothing to remove, nothing changes
        assert resp.status_code == 200 and resp.get_json()["configured"] is False
    else:
        assert resp.status_code == 422, resp.get_json()
        assert "url" in resp.get_json()["errors"]
    assert _state() == before


@pytest.mark.parametrize("body", [{}, {"url": 5}, {"url": HOOK, "extra": 1}, ["x"]])
def test_webhook_api_malformed_body(api, world, body):
    before = _state()
    resp = api.put("secretary_a", f"/api/v1/communities/{world.community_a.id}/webhook", json=body)
    assert resp.status_code == 422
    assert _state() == before


def test_webhook_api_not_a_community_or_missing(api, world):
    for area_id in (10**6, world.areas["street"].id, world.areas["grid_a1"].id):
        resp = api.put("admin", f"/api/v1/communities/{area_id}/webhook", json={"url": HOOK})
        assert resp.status_code == 404
    assert api.get("admin", f"/api/v1/communities/{2**31}/webhook").status_code == 404


def test_settings_page_shows_and_sets_the_robot(as_user, world):
    c = as_user("secretary_a")
    page = f"/communities/{world.community_a.id}/settings"
    html = text(c.get(page))
    assert "企业微信群机器人" in html and "未设置" in html
    assert_csp_clean(html)
    resp = post(c, f"{page}/webhook", {"url": HOOK})
    assert resp.status_code == 302
    html = text(c.get(page))
    assert "https://qyapi.weixin.qq.com/…abcd" in html and "SEKRIT" not in html
    resp = post(c, f"{page}/webhook", {"url": "https://example.org/x"})
    assert resp.status_code == 422 and 'class="field-errors"' in text(resp)
    fresh()
    assert db.session.get(CommunityWebhook, world.community_a.id).url == HOOK
    assert post(c, f"{page}/webhook", {"url": ""}).status_code == 302
    fresh()
    assert db.session.get(CommunityWebhook, world.community_a.id) is None


def test_settings_page_hides_the_robot_from_others(as_user, world):
    # a member may read the community's points policy, but not its robot
    html = text(as_user("member_a").get(f"/communities/{world.community_a.id}/settings"))
    assert "企业微信群机器人" not in html
    before = _state()
    resp = post(
        as_user("member_a"), f"/communities/{world.community_a.id}/settings/webhook", {"url": HOOK}
    )
    assert resp.status_code == 403
    resp = post(
        as_user("secretary_b"),
        f"/communities/{world.community_a.id}/settings/webhook",
        {"url": HOOK},
    )
    assert resp.status_code == 404
    assert _state() == before
