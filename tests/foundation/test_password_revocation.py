"""A password change ends every other session and revokes every API token (issue 20, 1).

Before: a token taken before the change kept answering ``/api/v1/me`` for its 720 h.
"""

from __future__ import annotations

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import ApiToken, AuditEntry, User
from volunteer_market.services import auth as auth_service
from volunteer_market.services import users as user_service

from ..conftest import csrf_token, login, post_form
from ..factories import bearer

PASSWORD = "password123"


def signed_in(client) -> bool:
    resp = client.get("/")
    if resp.status_code == 200:
        return True
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    return False


def change_password(client, new: str = "a-new-password"):
    return post_form(
        client,
        "/profile",
        {"action": "password", "old_password": PASSWORD, "new_password": new},
        token_from="/profile",
    )


def test_password_change_revokes_tokens_and_other_sessions(app, client, world):
    tokens = [bearer(world.member_a) for _ in range(2)]
    other_user_token = bearer(world.member_a2)
    for headers in tokens:
        assert client.get("/api/v1/me", headers=headers).status_code == 200
    other = app.test_client()
    login(client, "member_a")
    login(other, "member_a")

    resp = change_password(client)

    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/profile")
    for headers in tokens:
        assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert client.get("/api/v1/me", headers=other_user_token).status_code == 200
    assert not signed_in(other)
    assert signed_in(client)  # the browser that made the change stays signed in
    db.session.remove()
    revoked = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == world.member_a.id)
    ).all()
    assert len(revoked) == 2 and all(t.revoked_at is not None for t in revoked)
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "user.password")
    ).one()
    assert entry.detail == {"tokens_revoked": 2}
    login(other, "member_a", "a-new-password")


def test_a_rejected_change_revokes_nothing(app, client, world):
    headers = bearer(world.member_a)
    other = app.test_client()
    login(client, "member_a")
    login(other, "member_a")
    resp = change_password(client, new="short")
    assert resp.status_code == 422
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert signed_in(other)


def test_the_service_keeps_the_callers_own_token(app, world):
    kept_raw, kept = auth_service.issue_token(world.member_a, app.config["API_TOKEN_TTL"])
    other_raw, _other = auth_service.issue_token(world.member_a, app.config["API_TOKEN_TTL"])
    db.session.commit()
    with atomic():
        user = db.session.get(User, world.member_a.id)
        assert user is not None
        revoked = user_service.set_password(user, user, "a-new-password", keep_token_id=kept.id)
    assert revoked == 1
    assert auth_service.user_for_token(kept_raw) is not None
    assert auth_service.user_for_token(other_raw) is None


def test_an_old_session_cookie_is_refused_after_the_change(app, client, world):
    login(client, "member_a")
    copied = app.test_client()
    # the same cookie in another client (a stolen copy taken before the change)
    cookie = client.get_cookie("session")
    assert cookie is not None
    copied.set_cookie("session", cookie.value)
    assert signed_in(copied)
    assert change_password(client).status_code == 302
    assert not signed_in(copied)
    assert csrf_token(client, "/profile")
