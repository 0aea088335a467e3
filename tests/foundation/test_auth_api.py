"""POST/DELETE /api/v1/auth/token: tokens, expiry, revocation and login throttling."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import ApiToken, AuditEntry, User
from volunteer_market.services import auth as auth_service

from ..conftest import csrf_token, login
from ..factories import PASSWORD, bearer
from .conftest import count_rows, fresh_session

TOKEN_URL = "/api/v1/auth/token"
PROBLEM = "application/problem+json"


def _post_token(client, username, password, **kw):
    return client.post(TOKEN_URL, json={"username": username, "password": password}, **kw)


def _assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


# --- issuing tokens ---------------------------------------------------------------------


def test_token_issued_and_stored_only_as_hash(client, world):
    before = count_rows("api_tokens")["api_tokens"]
    resp = _post_token(client, "member_a", PASSWORD)
    assert resp.status_code == 201
    body = resp.get_json()
    assert set(body) == {"token", "expires_at", "user"}
    raw = body["token"]
    assert len(raw) >= 32
    assert body["user"]["username"] == "member_a"
    assert body["user"]["id"] == world.member_a.id
    assert "password" not in body["user"] and "password_hash" not in body["user"]
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.tzinfo is not None
    ttl = client.application.config["API_TOKEN_TTL"]
    assert abs((expires - datetime.now(UTC)) - ttl) < timedelta(minutes=1)

    assert count_rows("api_tokens")["api_tokens"] == before + 1
    fresh_session()
    row = db.session.execute(
        sa.select(ApiToken).where(ApiToken.user_id == world.member_a.id)
    ).scalar_one()
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in row.token_hash
    # The raw token is nowhere in the database.
    with db.engine.connect() as conn:
        for table in ("api_tokens", "audit_log"):
            for r in conn.execute(sa.text(f"SELECT * FROM {table}")):  # noqa: S608
                assert raw not in " ".join(map(str, r))
    audit = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.action == "token.issue")
    ).scalar_one()
    assert audit.actor_id == world.member_a.id and audit.object_id == row.id

    # The token works.
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200
    assert me.get_json()["user"]["username"] == "member_a"


def test_username_is_case_insensitive(client, world):
    assert _post_token(client, "  MEMBER_A ", PASSWORD).status_code == 201


def test_wrong_password_and_unknown_user_look_the_same(client, world):
    before = count_rows()
    wrong = _post_token(client, "member_a", "wrong-password")
    unknown = _post_token(client, "no_such_user", "wrong-password")
    body_wrong = _assert_problem(wrong, 401)
    body_unknown = _assert_problem(unknown, 401)
    assert body_wrong == body_unknown
    assert "member_a" not in json.dumps(body_wrong)
    assert count_rows() == before


def test_inactive_user_gets_the_same_401(client, world):
    with atomic():
        db.session.get(User, world.member_a.id).is_active = False
    body = _assert_problem(_post_token(client, "member_a", PASSWORD), 401)
    assert body == _assert_problem(_post_token(client, "nobody_here", PASSWORD), 401)
    assert count_rows("api_tokens")["api_tokens"] == 0


def test_deactivating_a_user_kills_their_tokens(client, world):
    headers = bearer(world.member_a)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with atomic():
        db.session.get(User, world.member_a.id).is_active = False
    _assert_problem(client.get("/api/v1/me", headers=headers), 401)


@pytest.mark.parametrize(
    "body",
    [
        {"username": "member_a"},
        {"password": PASSWORD},
        {"username": "member_a", "password": PASSWORD, "role": "admin"},
        {"username": "", "password": PASSWORD},
        {"username": 5, "password": PASSWORD},
    ],
)
def test_token_request_validation(client, world, body):
    resp = client.post(TOKEN_URL, json=body)
    problem = _assert_problem(resp, 422)
    assert problem["errors"]
    assert count_rows("api_tokens")["api_tokens"] == 0


def test_token_request_malformed_json(client, world):
    resp = client.post(TOKEN_URL, data="{not json", content_type="application/json")
    _assert_problem(resp, 400)
    assert count_rows("api_tokens")["api_tokens"] == 0


# --- expiry and revocation ---------------------------------------------------------------


def test_expired_token_is_refused(client, world):
    with atomic():
        raw, _token = auth_service.issue_token(world.member_a, timedelta(seconds=-1))
    resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    _assert_problem(resp, 401)
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_token_expiring_later_is_refused_once_past(client, world):
    with atomic():
        raw, token = auth_service.issue_token(world.member_a, timedelta(hours=1))
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with atomic():
        db.session.execute(
            sa.update(ApiToken)
            .where(ApiToken.id == token.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    _assert_problem(client.get("/api/v1/me", headers=headers), 401)


def test_revoke_token(client, world):
    raw = _post_token(client, "member_a", PASSWORD).get_json()["token"]
    headers = {"Authorization": f"Bearer {raw}"}
    other = bearer(world.member_a)  # a second token of the same user stays valid
    resp = client.delete(TOKEN_URL, headers=headers)
    assert resp.status_code == 204
    assert resp.get_data() == b""
    fresh_session()
    row = db.session.execute(
        sa.select(ApiToken).where(ApiToken.token_hash == hashlib.sha256(raw.encode()).hexdigest())
    ).scalar_one()
    assert row.revoked_at is not None
    _assert_problem(client.get("/api/v1/me", headers=headers), 401)
    _assert_problem(client.delete(TOKEN_URL, headers=headers), 401)
    assert client.get("/api/v1/me", headers=other).status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Bearer nonsense", "Basic bWVtYmVyX2E6cGFzc3dvcmQxMjM=", "Token x"],
)
def test_missing_or_bad_token(client, world, header):
    headers = {"Authorization": header} if header is not None else {}
    _assert_problem(client.get("/api/v1/me", headers=headers), 401)
    _assert_problem(client.delete(TOKEN_URL, headers=headers), 401)


def test_session_cookie_does_not_authenticate_the_api(client, world):
    from ..conftest import login

    login(client, "admin")
    assert client.get("/").status_code == 200
    _assert_problem(client.get("/api/v1/me"), 401)
    before = count_rows()
    _assert_problem(
        client.post("/api/v1/areas", json={"name": "x", "kind": "district", "parent_id": None}),
        401,
    )
    assert count_rows() == before


# --- throttling -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_config_overrides():
    return {"LOGIN_FAILURES_PER_HOUR": 3}


def _assert_429(resp):
    body = _assert_problem(resp, 429)
    retry = resp.headers.get("Retry-After")
    assert retry is not None and int(retry) > 0
    return body


def test_lockout_after_failures_per_account(client, world):
    for _ in range(3):
        _assert_problem(_post_token(client, "member_a", "bad-password"), 401)
    _assert_429(_post_token(client, "member_a", "bad-password"))
    # Even the right password is refused while locked out, and no token is issued.
    _assert_429(_post_token(client, "member_a", PASSWORD))
    assert count_rows("api_tokens")["api_tokens"] == 0


def test_account_limit_holds_across_ips_and_spellings(client, world):
    for i, name in enumerate(["member_a", "MEMBER_A", " member_a "]):
        resp = _post_token(client, name, "bad", environ_base={"REMOTE_ADDR": f"10.0.0.{i + 1}"})
        _assert_problem(resp, 401)
    resp = _post_token(client, "member_a", PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    _assert_429(resp)
    # Another account from a fresh IP is unaffected.
    resp = _post_token(client, "member_a2", PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.10"})
    assert resp.status_code == 201


def test_successful_logins_do_not_count(client, world):
    for _ in range(6):
        assert _post_token(client, "member_a", PASSWORD).status_code == 201
    for _ in range(3):
        _assert_problem(_post_token(client, "member_a", "bad"), 401)
    _assert_429(_post_token(client, "member_a", "bad"))


def test_per_ip_limit_across_usernames(client, world):
    ip = {"environ_base": {"REMOTE_ADDR": "192.0.2.7"}}
    for name in ("member_a", "member_a2", "ghost"):
        _assert_problem(_post_token(client, name, "bad", **ip), 401)
    _assert_429(_post_token(client, "member_a3", PASSWORD, **ip))
    # The same account from another address still gets in.
    other = {"environ_base": {"REMOTE_ADDR": "192.0.2.8"}}
    assert _post_token(client, "member_a3", PASSWORD, **other).status_code == 201


def test_login_page_shares_the_counters(client, world):
    _assert_problem(_post_token(client, "member_a", "bad"), 401)
    _assert_problem(_post_token(client, "member_a", "bad"), 401)
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login", data={"username": "member_a", "password": "bad", "csrf_token": token}
    )
    assert resp.status_code == 401
    # Now both the API and the page are locked for this account.
    _assert_429(_post_token(client, "member_a", PASSWORD))
    resp = client.post(
        "/login", data={"username": "member_a", "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 429
    assert resp.mimetype == "text/html"
    assert int(resp.headers["Retry-After"]) > 0
    with client.session_transaction() as sess:
        assert "_user_id" not in sess


def test_page_failures_lock_the_api(client, world):
    token = csrf_token(client, "/login")
    for _ in range(3):
        resp = client.post(
            "/login", data={"username": "member_b", "password": "bad", "csrf_token": token}
        )
        assert resp.status_code == 401
    _assert_429(_post_token(client, "member_b", PASSWORD))


# --- lockout across processes through the shared store ---------------------------------------

WORKER = r"""
import json, os, sys
os.environ.setdefault("SECRET_KEY", "test-secret-key")
from tests.conftest import TEST_CONFIG
from volunteer_market import create_app

url, prefix, attempts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
app = create_app({
    **TEST_CONFIG,
    "SQLALCHEMY_DATABASE_URI": url,
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
    "RATELIMIT_KEY_PREFIX": prefix,
    "LOGIN_FAILURES_PER_HOUR": 3,
})
client = app.test_client()
out = []
for username, password, ip in attempts:
    resp = client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )
    out.append([resp.status_code, resp.headers.get("Retry-After"), os.getpid()])
print(json.dumps(out))
"""


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url("redis://127.0.0.1:6379", socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _run_worker(url: str, prefix: str, attempts: list[tuple[str, str, str]]) -> list:
    """Run ``attempts`` (username, password, client IP) in a new Python process."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, url, prefix, json.dumps(attempts)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_lockout_holds_across_processes(app, world, database_url):
    """Failures counted in one process lock the account and the IP in another (Redis)."""
    if not _redis_available():  # pragma: no cover - CI has redis
        pytest.fail("this test needs Redis at 127.0.0.1:6379")
    import redis

    prefix = f"vmtest-{uuid.uuid4().hex}"
    try:
        first = _run_worker(database_url, prefix, [("member_a", "bad-password", "10.9.0.1")] * 3)
        assert [status for status, _retry, _pid in first] == [401, 401, 401]
        second = _run_worker(
            database_url,
            prefix,
            [
                ("member_a", PASSWORD, "10.9.0.2"),  # account locked
                ("member_a2", PASSWORD, "10.9.0.1"),  # IP locked
                ("member_a2", PASSWORD, "10.9.0.2"),  # neither: gets in
            ],
        )
        assert [status for status, _retry, _pid in second] == [429, 429, 201]
        assert int(second[0][1]) > 0 and int(second[1][1]) > 0
        assert first[0][2] != second[0][2]  # really two processes
        assert count_rows("api_tokens")["api_tokens"] == 1
        assert r_keys(prefix)  # the counters live in Redis
    finally:
        r = redis.Redis.from_url("redis://127.0.0.1:6379")
        for key in r.scan_iter(f"*{prefix}*"):
            r.delete(key)


def r_keys(prefix: str) -> list:
    import redis

    return list(redis.Redis.from_url("redis://127.0.0.1:6379").scan_iter(f"*{prefix}*"))


# --- the current-password check of /profile shares the login counters ------------------------


def _change_password(client, old: str):
    return client.post(
        "/profile",
        data={
            "action": "password",
            "old_password": old,
            "new_password": "a-new-password",
            "csrf_token": csrf_token(client, "/profile"),
        },
    )


def test_profile_password_guesses_are_throttled_with_logins(client, world):
    login(client, "member_a")
    before = count_rows("users")
    hash_before = db.session.get(User, world.member_a.id).password_hash
    for _ in range(3):
        assert _change_password(client, "wrong").status_code == 422
    # Locked out: even the right current password is refused, and nothing changes.
    resp = _change_password(client, PASSWORD)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0
    fresh_session()
    assert db.session.get(User, world.member_a.id).password_hash == hash_before
    assert count_rows("users") == before
    # The same account is locked at the login form and the token endpoint too.
    _assert_429(_post_token(client, "member_a", PASSWORD, environ_base={"REMOTE_ADDR": "10.9.9.9"}))
    # Another account from another address is not.
    assert (
        _post_token(client, "member_a2", PASSWORD, environ_base={"REMOTE_ADDR": "10.9.9.8"})
    ).status_code == 201


def test_profile_other_actions_do_not_count(client, world):
    login(client, "member_a")
    for locale in ("en", "zh_CN", "en", "zh_CN"):
        resp = client.post(
            "/profile",
            data={
                "action": "language",
                "locale": locale,
                "csrf_token": csrf_token(client, "/profile"),
            },
        )
        assert resp.status_code == 302
    assert client.get("/profile").status_code == 200
    # A right current password changes it (and signs out), not counted either.
    assert _change_password(client, PASSWORD).status_code == 302
