"""A session cookie copied to another client is not signed in (issue 20, item 7).

Before: ``session_protection = "strong"`` had no effect on permanent sessions (every
session here): Flask-Login only marked the session non-fresh, so the copied cookie
opened ``/profile`` from another browser (another User-Agent) or another address.
"""

from __future__ import annotations

import contextvars

from flask.testing import FlaskClient

from ..conftest import login

UA_PHONE = "Mozilla/5.0 (Linux; Android 14) Mobile"


class FreshClient(FlaskClient):
    """Each request in its own context, as in production: the test's pushed app context
    would otherwise keep Flask-Login's cached user in ``g`` from one request to the next."""

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contextvars.Context().run(super().open, *args, **kwargs)


def _client(app, **environ) -> FreshClient:
    c = FreshClient(app, app.response_class, use_cookies=True)
    c.environ_base.update(environ)
    return c


def _signed_in_client(app, **environ):
    c = _client(app, **{"HTTP_USER_AGENT": UA_PHONE, **environ})
    login(c, "member_a")
    assert c.get("/profile").status_code == 200
    return c


def _copy_cookie(app, source, **environ):
    thief = _client(app, **environ)
    cookie = source.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    return thief


def test_copied_cookie_with_another_user_agent_is_signed_out(app, world):
    owner = _signed_in_client(app)
    thief = _copy_cookie(app, owner, HTTP_USER_AGENT="curl/8.5.0")
    resp = thief.get("/profile")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    # the refused session is emptied, not merely marked non-fresh
    assert thief.get("/api/v1/me").status_code == 401
    again = thief.get("/profile")
    assert again.status_code == 302
    # the owner's own browser is not affected
    assert owner.get("/profile").status_code == 200


def test_copied_cookie_from_another_address_is_signed_out(app, world):
    owner = _signed_in_client(app, REMOTE_ADDR="10.0.0.5")
    thief = _copy_cookie(app, owner, HTTP_USER_AGENT=UA_PHONE, REMOTE_ADDR="10.9.9.9")
    resp = thief.get("/profile")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert owner.get("/profile").status_code == 200


def test_same_client_keeps_its_session(app, world):
    owner = _signed_in_client(app)
    twin = _copy_cookie(app, owner, HTTP_USER_AGENT=UA_PHONE)  # same address and agent
    assert twin.get("/profile").status_code == 200
