"""End to end over HTTP: migrate a fresh database with the CLI, load the demo data,
serve it with gunicorn (3 workers, production config, Redis-backed rate limits) and
walk the flows a phone client uses. Runs on SQLite, or on PostgreSQL when
DATABASE_URL is set (a throw-away database is created)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from ..conftest import ON_POSTGRES, drop_postgres_database, postgres_url_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: base URL of each running server -> its DATABASE_URL (for CLI checks on the same database)
SERVED_URLS: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base: str, method: str, path: str, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310 - loopback
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


def ledger_verify(base: str) -> subprocess.CompletedProcess:
    """Run ``flask ledger verify`` on the database the server of ``base`` serves."""
    return subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "ledger", "verify"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": SERVED_URLS[base], "SECRET_KEY": "e2e-secret"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def served(tmp_path):
    if ON_POSTGRES:
        db_url = postgres_url_for("e2e_" + uuid.uuid4().hex[:8])
    else:
        db_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SECRET_KEY": "e2e-secret",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
        "RATELIMIT_KEY_PREFIX": "e2e-" + uuid.uuid4().hex,
        "LOGIN_FAILURES_PER_HOUR": "5",
        "PASSWORD_HASH_MEMORY_KIB": "19456",
        "PASSWORD_HASH_TIME_COST": "2",
    }
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    out = subprocess.run(
        [*flask, "demo", "load"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert "secretary_lh" in out.stdout
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _call(base, "GET", "/api/v1/openapi.json")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        proc.wait()
        pytest.fail("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])
    SERVED_URLS[base] = db_url
    try:
        yield base
    finally:
        SERVED_URLS.pop(base, None)
        proc.terminate()
        proc.wait(timeout=20)
        proc.stderr.close()
        if ON_POSTGRES:
            drop_postgres_database(db_url)


def test_foundation_flows_under_gunicorn(served):
    base = served
    status, _h, body = _call(
        base, "POST", "/api/v1/auth/token", {"username": "admin", "password": "demo12345"}
    )
    assert status == 201 and body["user"]["username"] == "admin"
    admin = body["token"]

    status, _h, me = _call(base, "GET", "/api/v1/me", token=admin)
    assert status == 200 and me["roles"][0]["role"] == "admin"

    status, _h, areas = _call(base, "GET", "/api/v1/areas?kind=community", token=admin)
    assert status == 200 and areas["total"] >= 6
    community = next(a for a in areas["items"] if a["name"] == "龙湖东岸社区")

    status, _h, user = _call(
        base,
        "POST",
        "/api/v1/users",
        {"username": "new_member", "password": "longenough1", "display_name": "新党员"},
        token=admin,
    )
    assert status == 201
    status, _h, grant = _call(
        base,
        "POST",
        f"/api/v1/users/{user['id']}/roles",
        {"role": "member", "area_id": community["id"]},
        token=admin,
    )
    assert status == 201 and grant["role"] == "member"

    status, _h, body = _call(
        base, "POST", "/api/v1/auth/token", {"username": "new_member", "password": "longenough1"}
    )
    assert status == 201
    member = body["token"]
    status, _h, body = _call(
        base, "POST", "/api/v1/areas", {"name": "x", "kind": "district"}, token=member
    )
    assert status == 403 and body["status"] == 403

    # revocation holds in every worker
    assert _call(base, "DELETE", "/api/v1/auth/token", token=member)[0] == 204
    for _ in range(6):
        assert _call(base, "GET", "/api/v1/me", token=member)[0] == 401


def test_login_lockout_holds_across_workers(served):
    base = served
    codes = [
        _call(
            base,
            "POST",
            "/api/v1/auth/token",
            {"username": "member_chen", "password": "wrong-password"},
        )[0]
        for _ in range(12)
    ]
    # 5 failures allowed per hour per account, whichever worker answers; the rest are 429.
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}
    status, headers, body = _call(
        base, "POST", "/api/v1/auth/token", {"username": "member_chen", "password": "demo12345"}
    )
    assert status == 429 and "Retry-After" in headers and body["status"] == 429
