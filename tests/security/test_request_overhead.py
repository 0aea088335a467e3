"""What every request no longer pays (issue 21 item 3, ``http/overhead.py``), and that the
controls it touched still hold: the cookie session's signing serializer is built once per
secret (and again when the secret changes); Flask-Limiter's per-request middleware check
is gone while the app has no default, application, meta or blueprint limit, and the
decorated throttles still answer 429."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from volunteer_market.extensions import limiter
from volunteer_market.http.overhead import CookieSessionInterface, drop_idle_limiter_check

from ..conftest import csrf_token, login
from ..ledger.conftest import IsolatedClient


@pytest.fixture
def client(app):
    """Each request in its own app context, as in production (else Flask-Login's user,
    kept in the shared ``g``, would outlive a refused cookie)."""
    app.test_client_class = IsolatedClient
    yield app.test_client()
    app.test_client_class = None


def test_the_signing_serializer_is_built_once_per_secret(app):
    interface = app.session_interface
    assert isinstance(interface, CookieSessionInterface)
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    old_secret = app.secret_key
    app.config["SECRET_KEY"] = "another-secret-of-enough-length-0123456789"
    try:
        rotated = interface.get_signing_serializer(app)
        assert rotated is not first
        assert rotated.loads(rotated.dumps({"a": 1})) == {"a": 1}
        # a fallback added is a different key list, hence a new serializer that still
        # reads cookies signed with the old key
        app.config["SECRET_KEY_FALLBACKS"] = [old_secret]
        with_fallback = interface.get_signing_serializer(app)
        assert with_fallback is not rotated
        assert with_fallback.loads(first.dumps({"b": 2})) == {"b": 2}
    finally:
        app.config["SECRET_KEY"] = old_secret
        app.config["SECRET_KEY_FALLBACKS"] = []


def test_a_page_session_still_signs_in_and_out(client, world):
    login(client, "member_a")
    assert client.get("/profile").status_code == 200
    token = csrf_token(client, "/profile")
    client.post("/logout", data={"csrf_token": token})
    resp = client.get("/profile")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_cookie_signed_with_another_secret_is_refused(app, client, world):
    login(client, "member_a")
    old_secret = app.secret_key
    app.config["SECRET_KEY"] = "a-different-secret-of-enough-length-012345"
    try:
        resp = client.get("/profile")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    finally:
        app.config["SECRET_KEY"] = old_secret


def test_the_limiter_middleware_is_dropped_when_it_has_nothing_to_check(app):
    funcs = app.before_request_funcs.get(None, [])
    assert limiter._check_request_limit not in funcs  # noqa: SLF001


def test_the_limiter_middleware_stays_when_a_limit_needs_it():
    """A limiter of its own (the app's is shared by every app of the process)."""
    for defaults, dropped in (([], True), (["5/minute"], False)):
        app = Flask(__name__)
        app.config["RATELIMIT_STORAGE_URI"] = "memory://"
        own = Limiter(key_func=get_remote_address, default_limits=defaults)
        own.init_app(app)
        assert drop_idle_limiter_check(app, own) is dropped
        kept = own._check_request_limit in app.before_request_funcs.get(None, [])  # noqa: SLF001
        assert kept is not dropped
    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI="memory://", RATELIMIT_APPLICATION="9/minute")
    own = Limiter(key_func=get_remote_address)
    own.init_app(app)
    assert drop_idle_limiter_check(app, own) is False


# The decorated throttles answering 429 with the middleware gone: tests/foundation/
# test_auth_api.py (login per account and per address), tests/security/
# test_pickup_lockout.py, tests/security/test_api_rate_limit.py.
