"""Pickup codes lock out after too many wrong tries (issue 20, item 7).

Before: a secretary's session (or a script holding its token) could try pickup codes
without end; nothing was counted or audited. Now 5 wrong codes lock the redemption
for 15 minutes (the right code too), 20 wrong codes an hour lock the fulfilling user,
and parallel tries cannot overrun either counter, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import AuditEntry, Redemption, RedemptionStatus, utcnow
from volunteer_market.services.redemptions import lockout

from ..conftest import csrf_token, login
from ..factories import bearer, give_points, make_reward, redeem
from ..ledger.conftest import run_threads


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


@pytest.fixture
def held(world):
    """Make held redemptions of member_a (handled by secretary_a): ``held(n)``."""
    give_points(world.member_a, 500)
    reward = make_reward(world.community_a, cost=5)

    def make(n: int = 1):
        return [redeem(world.member_a, reward) for _ in range(n)]

    return make


def _fulfil(client, headers, redemption_id: int, code: str):
    return client.post(
        f"/api/v1/redemptions/{redemption_id}/fulfil", json={"pickup_code": code}, headers=headers
    )


def _row(redemption_id: int) -> Redemption:
    db.session.rollback()
    return db.session.get(Redemption, redemption_id, populate_existing=True)


def _audits(action: str) -> list[AuditEntry]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


def _assert_locked(resp) -> None:
    assert resp.status_code == 429, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert "Too many wrong pickup codes" in resp.get_json()["detail"]
    assert int(resp.headers["Retry-After"]) >= 1


def test_five_wrong_codes_lock_the_redemption_even_for_the_right_code(client, world, held):
    (issued,) = held(1)
    rid, code = issued.redemption.id, issued.pickup_code
    headers = bearer(world.secretary_a)
    for n in range(1, 5):
        resp = _fulfil(client, headers, rid, _wrong(code))
        assert resp.status_code == 422 and resp.get_json()["detail"] == "The pickup code is wrong."
        assert _row(rid).code_failures == n
    fifth = _fulfil(client, headers, rid, _wrong(code))
    assert fifth.status_code == 422 and "locked" in fifth.get_json()["detail"]
    row = _row(rid)
    assert row.code_locked_until is not None and row.code_failures == 0
    assert timedelta(minutes=14) < row.code_locked_until - utcnow() <= timedelta(minutes=15)
    right = _fulfil(client, headers, rid, code)
    _assert_locked(right)
    assert 800 <= int(right.headers["Retry-After"]) <= 901
    assert _row(rid).status == RedemptionStatus.HELD
    failed = _audits("redemption.code_failed")
    assert [a.detail["failures"] for a in failed] == [1, 2, 3, 4, 5]
    assert all(a.actor_id == world.secretary_a.id and a.object_id == rid for a in failed)
    (locked,) = _audits("redemption.code_locked")
    assert locked.detail["scope"] == "redemption"
    # the lock-out ends: the right code works again
    db.session.execute(
        sa.update(Redemption)
        .where(Redemption.id == rid)
        .values(code_locked_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    done = _fulfil(client, headers, rid, code)
    assert done.status_code == 200 and done.get_json()["status"] == "fulfilled"


def test_a_malformed_code_is_not_counted(client, world, held):
    (issued,) = held(1)
    headers = bearer(world.secretary_a)
    for _ in range(6):
        assert _fulfil(client, headers, issued.redemption.id, "12").status_code == 422
    assert _row(issued.redemption.id).code_failures == 0
    assert _fulfil(client, headers, issued.redemption.id, issued.pickup_code).status_code == 200


def test_the_fulfilling_user_is_locked_out_across_redemptions(client, world, held, monkeypatch):
    monkeypatch.setattr(lockout, "FAILURES_PER_USER_PER_HOUR", 3)
    issued = held(3)
    headers = bearer(world.secretary_a)
    for one in issued:  # one wrong code on each of three redemptions
        assert (
            _fulfil(client, headers, one.redemption.id, _wrong(one.pickup_code)).status_code == 422
        )
    _assert_locked(_fulfil(client, headers, issued[0].redemption.id, issued[0].pickup_code))
    (locked,) = _audits("redemption.code_locked")
    assert locked.detail == {"scope": "user"} and locked.actor_id == world.secretary_a.id
    assert all(_row(one.redemption.id).status == RedemptionStatus.HELD for one in issued)
    # an hour later the failures no longer count
    db.session.execute(
        sa.update(AuditEntry)
        .where(AuditEntry.action == "redemption.code_failed")
        .values(created_at=utcnow() - timedelta(hours=1, seconds=5))
    )
    db.session.commit()
    assert (
        _fulfil(client, headers, issued[0].redemption.id, issued[0].pickup_code).status_code == 200
    )


def test_parallel_wrong_codes_cannot_overrun_the_redemption_limit(app, world, held):
    (issued,) = held(1)
    rid, code = issued.redemption.id, issued.pickup_code
    headers = bearer(world.secretary_a)
    db.session.remove()

    def attempt(i: int) -> int:
        return _fulfil(app.test_client(), headers, rid, _wrong(code)).status_code

    statuses = run_threads(12, attempt)
    assert sorted(statuses) == [422] * 5 + [429] * 7, statuses
    assert len(_audits("redemption.code_failed")) == 5
    assert len(_audits("redemption.code_locked")) == 1
    _assert_locked(_fulfil(app.test_client(), headers, rid, code))


def test_parallel_wrong_codes_cannot_overrun_the_user_limit(app, world, held, monkeypatch):
    monkeypatch.setattr(lockout, "FAILURES_PER_USER_PER_HOUR", 4)
    issued = held(6)
    headers = bearer(world.secretary_a)
    db.session.remove()

    def attempt(i: int) -> int:
        one = issued[i % len(issued)]  # at most 2 tries per redemption: below its limit
        return _fulfil(
            app.test_client(), headers, one.redemption.id, _wrong(one.pickup_code)
        ).status_code

    statuses = run_threads(12, attempt)
    assert sorted(statuses) == [422] * 4 + [429] * 8, statuses
    assert len(_audits("redemption.code_failed")) == 4


def test_the_fulfil_page_says_so(client, world, held):
    (issued,) = held(1)
    login(client, "secretary_a")
    for _ in range(5):
        resp = client.post(
            "/rewards/fulfil",
            data={
                "csrf_token": csrf_token(client, "/rewards/fulfil"),
                "code": _wrong(issued.pickup_code),
                "redemption_id": str(issued.redemption.id),
            },
        )
        assert resp.status_code == 422
    resp = client.post(
        "/rewards/fulfil",
        data={
            "csrf_token": csrf_token(client, "/rewards/fulfil"),
            "code": issued.pickup_code,
            "redemption_id": str(issued.redemption.id),
        },
    )
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 60
    assert "输错次数过多" in resp.get_data(as_text=True)
    assert _row(issued.redemption.id).status == RedemptionStatus.HELD


def test_the_fulfil_page_look_up_counts_and_is_locked_out(client, world, held, monkeypatch):
    """Looking codes up on the fulfilment page is no way round the per-user limit."""
    monkeypatch.setattr(lockout, "FAILURES_PER_USER_PER_HOUR", 3)
    (issued,) = held(1)
    login(client, "secretary_a")
    wrong = _wrong(issued.pickup_code)
    assert client.get("/rewards/fulfil?code=12ab").status_code == 422  # malformed: not counted
    for _ in range(3):
        assert client.get(f"/rewards/fulfil?code={wrong}").status_code == 404
    failed = _audits("redemption.code_failed")
    assert len(failed) == 3 and all(a.detail == {"lookup": True} for a in failed)
    assert _audits("redemption.code_locked")[0].detail == {"scope": "user"}
    # locked out: neither the look-up nor the API finds or fulfils the right code
    resp = client.get(f"/rewards/fulfil?code={issued.pickup_code}")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 60
    assert "确认已发放" not in resp.get_data(as_text=True)
    _assert_locked(
        _fulfil(client, bearer(world.secretary_a), issued.redemption.id, issued.pickup_code)
    )
