"""Idempotency-Key on point-moving POSTs: replay, mismatch, scope, failures, purge,
and 8 concurrent duplicates posting exactly one transaction (SQLite file / PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import IdempotencyKey, utcnow
from volunteer_market.services import idempotency
from volunteer_market.services.verify import verify

from ..factories import bearer, give_points, points_of
from .conftest import counts, raw, run_threads


def _post(client, headers, body, key, path="/api/v1/adjustments"):
    return client.post(path, json=body, headers={**headers, "Idempotency-Key": key})


def test_replay_returns_the_first_response(client, world):
    h = bearer(world.secretary_a)
    body = {"user_id": world.member_a.id, "amount": 12, "reason": "补录"}
    first = _post(client, h, body, "key-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    before = counts()
    second = _post(
        client, h, {"reason": "补录", "amount": 12, "user_id": world.member_a.id}, "key-1"
    )
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_data() == first.get_data()
    assert counts() == before
    assert points_of(world.member_a)["available"] == 12


def test_same_key_different_body_is_422(client, world):
    h = bearer(world.secretary_a)
    _post(client, h, {"user_id": world.member_a.id, "amount": 12, "reason": "补录"}, "key-2")
    before = counts()
    resp = _post(client, h, {"user_id": world.member_a.id, "amount": 13, "reason": "补录"}, "key-2")
    assert resp.status_code == 422
    assert "Idempotency-Key" in resp.get_json()["errors"]
    tx = give_points(world.member_a, 50)
    before = counts()
    resp = _post(client, h, {"reason": "x"}, "key-2", path=f"/api/v1/transactions/{tx.id}/reverse")
    assert resp.status_code == 422  # the same key on another endpoint
    assert counts() == before
    assert points_of(world.member_a)["available"] == 62


def test_keys_are_per_user(client, world):
    body = {"user_id": world.member_a.id, "amount": 3, "reason": "x"}
    assert _post(client, bearer(world.secretary_a), body, "shared").status_code == 201
    # another user's identical key is their own: secretary_b may not adjust member_a
    assert _post(client, bearer(world.secretary_b), body, "shared").status_code == 403
    assert raw("SELECT COUNT(*) FROM idempotency_keys")[0][0] == 1


def test_a_refused_request_is_not_stored(client, world):
    h = bearer(world.secretary_a)
    body = {"user_id": world.member_a.id, "amount": -10, "reason": "扣回"}
    assert _post(client, h, body, "retry-me").status_code == 409
    assert raw("SELECT COUNT(*) FROM idempotency_keys")[0][0] == 0
    give_points(world.member_a, 10)
    retry = _post(client, h, body, "retry-me")
    assert retry.status_code == 201  # the retry runs again, now that it can succeed
    assert _post(client, h, body, "retry-me").get_data() == retry.get_data()
    assert points_of(world.member_a)["available"] == 0


def test_reverse_replay_is_not_a_second_reversal(client, world):
    tx = give_points(world.member_a, 8)
    h = bearer(world.secretary_a)
    path = f"/api/v1/transactions/{tx.id}/reverse"
    first = _post(client, h, {"reason": "录错"}, "rev-1", path=path)
    again = _post(client, h, {"reason": "录错"}, "rev-1", path=path)
    assert first.status_code == again.status_code == 201
    assert first.get_data() == again.get_data()
    assert _post(client, h, {"reason": "录错"}, "rev-2", path=path).status_code == 409


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "中文"])
def test_invalid_keys(client, world, key):
    h = bearer(world.secretary_a)
    resp = client.post(
        "/api/v1/adjustments",
        json={"user_id": world.member_a.id, "amount": 1, "reason": "x"},
        headers={**h, "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert resp.status_code == 422
    assert counts()["ledger_transactions"] == 0


def test_the_ledger_key_survives_a_purged_idempotency_row(client, world):
    """The ledger transaction's own key derives from the header: a retry after the
    key row is gone still posts nothing new."""
    h = bearer(world.secretary_a)
    body = {"user_id": world.member_a.id, "amount": 4, "reason": "x"}
    first = _post(client, h, body, "long-retry").get_json()
    raw(
        "UPDATE idempotency_keys SET created_at = :t",
        t=(utcnow() - timedelta(days=3)).replace(tzinfo=None),
    )
    with atomic():
        assert idempotency.purge_expired() == 1
    again = _post(client, h, body, "long-retry")
    assert again.status_code == 201 and again.get_json()["id"] == first["id"]
    assert points_of(world.member_a)["available"] == 4


def test_purge_keeps_keys_for_at_least_a_day(client, world, runner):
    h = bearer(world.secretary_a)
    for n in range(3):
        _post(client, h, {"user_id": world.member_a.id, "amount": 1, "reason": "x"}, f"k{n}")
    old = (utcnow() - timedelta(hours=25)).replace(tzinfo=None)
    raw("UPDATE idempotency_keys SET created_at = :t WHERE key = 'k0'", t=old)
    with atomic():
        assert idempotency.purge_expired(timedelta(minutes=5)) == 1  # never younger than 24 h
    assert raw("SELECT key FROM idempotency_keys ORDER BY key") == [("k1",), ("k2",)]
    result = runner.invoke(args=["ledger", "purge-idempotency-keys", "--hours", "48"])
    assert result.exit_code == 0 and "Purged 0" in result.output
    assert runner.invoke(args=["ledger", "purge-idempotency-keys", "--hours", "1"]).exit_code != 0


def test_fingerprint_is_canonical():
    a = idempotency.request_fingerprint("POST", "/p", b'{"a": 1, "b": [1, 2]}')
    b = idempotency.request_fingerprint("post", "/p", b'{"b":[1,2],"a":1}')
    assert a == b
    assert a != idempotency.request_fingerprint("POST", "/q", b'{"a": 1, "b": [1, 2]}')
    assert a != idempotency.request_fingerprint("POST", "/p", b'{"a": 2, "b": [1, 2]}')
    assert idempotency.request_fingerprint("POST", "/p", b"\xff not json")


def test_eight_concurrent_duplicates_post_exactly_once(app, world):
    h = {**bearer(world.secretary_a), "Idempotency-Key": "burst-1"}
    body = {"user_id": world.member_a.id, "amount": 25, "reason": "并发重复提交"}

    def work(_i):
        resp = app.test_client().post("/api/v1/adjustments", json=body, headers=h)
        return resp.status_code, resp.get_data(), resp.headers.get("Idempotent-Replayed")

    results = run_threads(8, work)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert [status for status, _b, _r in results] == [201] * 8
    assert len({data for _s, data, _r in results}) == 1  # the same body for everyone
    assert sorted(r or "" for _s, _b, r in results) == [""] + ["true"] * 7
    c = counts()
    assert c["ledger_transactions"] == 1 and c["idempotency_keys"] == 1
    assert points_of(world.member_a)["available"] == 25
    db.session.rollback()
    assert verify() is None
    stored = db.session.execute(sa.select(IdempotencyKey)).scalar_one()
    assert stored.response_status == 201
