"""A busy database answers 503 with Retry-After (never a bare 500); other database
errors stay 500."""

import sqlalchemy as sa

from volunteer_market.api import accounts

from .factories import bearer


def _raise(message):
    def boom(_user):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception(message))

    return boom


def test_locked_database_is_503_with_retry_after(client, world, monkeypatch):
    monkeypatch.setattr(accounts, "points_summary", _raise("database is locked"))
    resp = client.get("/api/v1/me", headers=bearer(world.member_a))
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "2"
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["status"] == 503


def test_other_operational_errors_are_500(client, world, monkeypatch):
    monkeypatch.setattr(accounts, "points_summary", _raise("disk I/O error"))
    resp = client.get("/api/v1/me", headers=bearer(world.member_a))
    assert resp.status_code == 500
    assert resp.get_json()["status"] == 500
