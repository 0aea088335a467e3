"""``API_RATE_LIMIT`` holds on the API (issue 20, item 7).

Before: the setting (``600/minute``) was configured but never applied: any number of
API requests were served. Here the limit is 3 a minute (this module's config only).
"""

from __future__ import annotations

import pytest

from ..conftest import TEST_CONFIG, login
from ..factories import bearer


@pytest.fixture
def app_config(database_url: str) -> dict:
    return {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "API_RATE_LIMIT": "3/minute"}


def _assert_limited(resp) -> None:
    assert resp.status_code == 429
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == 429 and body["title"] == "Too many requests"
    assert 1 <= int(resp.headers["Retry-After"]) <= 61


def test_a_user_gets_429_after_the_limit(client, world):
    headers = bearer(world.member_a)
    assert [client.get("/api/v1/me", headers=headers).status_code for _ in range(3)] == [200] * 3
    _assert_limited(client.get("/api/v1/me", headers=headers))
    _assert_limited(client.get("/api/v1/projects", headers=headers))  # every operation


def test_the_limit_is_per_user_not_per_token_or_address(client, world):
    first, second = bearer(world.member_a), bearer(world.member_a)
    for headers in (first, second, first):
        assert client.get("/api/v1/me", headers=headers).status_code == 200
    # a second token of the same user, from another address: the same counter
    _assert_limited(
        client.get("/api/v1/me", headers=second, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    )
    # another user from the same address is not affected
    assert client.get("/api/v1/me", headers=bearer(world.member_b)).status_code == 200


def test_anonymous_and_unknown_tokens_count_per_address(client, world):
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = [client.get("/api/v1/me", headers=bad).status_code for _ in range(3)]
    assert statuses == [401] * 3
    _assert_limited(client.get("/api/v1/me", headers=bad))
    # a public operation from the same address is counted with them
    _assert_limited(client.post("/api/v1/ratings/by-code", json={"code": "123456", "score": 5}))
    # another address still gets through
    other = {"REMOTE_ADDR": "10.2.2.2"}
    assert client.get("/api/v1/me", headers=bad, environ_base=other).status_code == 401


def test_pages_are_not_counted(client, world):
    login(client, "member_a")
    assert all(client.get("/profile").status_code == 200 for _ in range(5))
    assert client.get("/api/v1/me", headers=bearer(world.member_a)).status_code == 200


def test_every_operation_documents_429(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert "429" in op["responses"], (method, path)


def test_production_default_is_600_a_minute(tmp_path, monkeypatch):
    from volunteer_market.config import build_config

    monkeypatch.delenv("API_RATE_LIMIT", raising=False)
    assert build_config(str(tmp_path))["API_RATE_LIMIT"] == "600/minute"
