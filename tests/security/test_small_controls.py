"""The smaller hardening items (issue 20, item 7).

Before: no HSTS with ``SESSION_COOKIE_SECURE=1``; ``/login`` sent
``X-RateLimit-Remaining``; production
started with ``memory://`` limits and 3 workers (each worker its own counters); control
and bidi-override characters were accepted in titles and names; access-log lines could
be forged with ``%0A`` in the path.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from volunteer_market.config import ConfigError, check_shared_limits
from volunteer_market.extensions import db

from ..conftest import TEST_CONFIG, csrf_token, login, post_form
from ..factories import bearer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_config(database_url: str) -> dict:
    return {
        **TEST_CONFIG,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SESSION_COOKIE_SECURE": True,
    }


def test_hsts_when_cookies_are_secure(client, world):
    resp = client.get("/login")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_no_hsts_over_plain_http(client, world, app):
    app.config["SESSION_COOKIE_SECURE"] = False
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_login_sends_no_rate_limit_headers(client, world):
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": "x", "password": "y", "csrf_token": token})
    assert resp.status_code == 401
    assert not [h for h, _v in resp.headers.items() if h.lower().startswith("x-ratelimit")]
    api = client.post("/api/v1/auth/token", json={"username": "x", "password": "y" * 8})
    assert not [h for h, _v in api.headers.items() if h.lower().startswith("x-ratelimit")]


@pytest.mark.parametrize(
    ("environ", "workers", "refused"),
    [
        ({"VM_ENV": "production"}, 3, True),
        ({"VM_ENV": "production", "RATELIMIT_STORAGE_URI": "memory://"}, 2, True),
        ({"VM_ENV": "production", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}, 3, False),
        ({"VM_ENV": "production"}, 1, False),
        ({"VM_ENV": "development"}, 3, False),
    ],
)
def test_production_refuses_per_worker_limits(environ, workers, refused):
    if refused:
        with pytest.raises(ConfigError):
            check_shared_limits(workers, environ)
    else:
        check_shared_limits(workers, environ)


def test_gunicorn_config_refuses_memory_limits_with_workers(monkeypatch):
    monkeypatch.setenv("VM_ENV", "production")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    assert spec and spec.loader
    with pytest.raises(ConfigError):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def _gunicorn_conf(monkeypatch):
    monkeypatch.setenv("VM_ENV", "production")  # the file's setdefault must not leak
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379")
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_access_log_lines_cannot_be_forged(monkeypatch):
    conf = _gunicorn_conf(monkeypatch)
    assert conf.logger_class is conf.AccessLogger
    forged = '/x\n127.0.0.1 "GET /admin HTTP/1.1" 200\r\x1b[2J\x85'
    escaped = conf.escape_controls(forged)
    assert "\n" not in escaped and "\r" not in escaped and "\x1b" not in escaped
    assert "\x85" not in escaped and "\\x0a" in escaped

    from gunicorn.config import Config

    logger = conf.AccessLogger(Config())

    class Resp:
        status = "404 NOT FOUND"
        response_length = 0
        sent = 0
        headers = ()

    class Req:
        headers = ()

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": forged,
        "RAW_URI": forged,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
    }
    import datetime

    atoms = logger.atoms(Resp(), Req(), environ, datetime.timedelta(seconds=0.01))
    assert "\n" not in atoms["U"] and "\\x0a" in atoms["U"]


BAD_TEXTS = ["a\u202eb", "a\u2066b", "a\x1bb", "a\x07b", "a\u200fb", "a\x85b"]


@pytest.mark.parametrize("bad", BAD_TEXTS + ["two\nlines", "tab\there"])
def test_control_and_bidi_characters_are_refused_in_titles_and_names(client, world, bad):
    users = db.session.execute(sa.select(sa.func.count()).select_from(sa.text("users")))
    before = users.scalar_one()
    resp = client.post(
        "/api/v1/users",
        json={"username": "fresh", "password": "password123", "display_name": bad},
        headers=bearer(world.admin),
    )
    assert resp.status_code == 422
    assert "display_name" in resp.get_json()["errors"]
    resp = client.post(
        "/api/v1/projects",
        json={
            "community_id": world.community_a.id,
            "title": bad,
            "description": "x",
            "category": "other",
            "mode": "team",
        },
        headers=bearer(world.member_a),
    )
    assert resp.status_code == 422
    assert "title" in resp.get_json()["errors"]
    db.session.remove()
    after = db.session.execute(sa.select(sa.func.count()).select_from(sa.text("users")))
    assert after.scalar_one() == before


def test_line_breaks_stay_allowed_in_long_texts(client, world):
    resp = client.post(
        "/api/v1/users",
        json={
            "username": "fresh",
            "password": "password123",
            "display_name": "正常 名字",
            "address": "一行\n二行",
        },
        headers=bearer(world.admin),
    )
    assert resp.status_code == 201, resp.get_json()


def test_a_page_form_shows_the_refusal_in_chinese(client, world, caplog):
    caplog.set_level(logging.INFO)
    login(client, "admin")
    resp = post_form(
        client,
        "/admin/users",
        {"username": "fresh", "password": "password123", "display_name": "a\u202eb"},
        token_from="/admin/users",
    )
    assert resp.status_code == 422
    assert "不能包含控制字符或文字方向字符。" in resp.get_data(as_text=True)
