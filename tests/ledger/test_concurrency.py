"""Real threads against one database (a SQLite file, or PostgreSQL with DATABASE_URL):
balances never go negative, a transaction is reversed once, a delivery earns once,
and the ledger verifies afterwards."""

from __future__ import annotations

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.services import ledger
from volunteer_market.services.errors import Conflict, InsufficientPoints
from volunteer_market.services.verify import BUILTIN_CHECKS, verify

from ..factories import bearer, give_points, points_of, post_earn
from .conftest import counts, run_threads


def _adjust(app, headers, member_id, amount):
    resp = app.test_client().post(
        "/api/v1/adjustments",
        json={"user_id": member_id, "amount": amount, "reason": "并发"},
        headers=headers,
    )
    return resp.status_code


def test_concurrent_debits_never_overdraw(app, world):
    give_points(world.member_a, 100)
    h = bearer(world.secretary_a)
    statuses = run_threads(12, lambda _i: _adjust(app, h, world.member_a.id, -30))
    assert sorted(statuses) == [201] * 3 + [409] * 9, statuses
    assert points_of(world.member_a)["available"] == 10
    db.session.rollback()
    assert verify() is None


def test_concurrent_credits_and_debits(app, world):
    give_points(world.member_a, 20)
    h = bearer(world.secretary_a)
    amounts = [7, -9] * 10
    statuses = run_threads(len(amounts), lambda i: _adjust(app, h, world.member_a.id, amounts[i]))
    assert all(s in (201, 409) for s in statuses), statuses
    assert all(s == 201 for s, a in zip(statuses, amounts, strict=True) if a > 0)
    debits = sum(1 for s, a in zip(statuses, amounts, strict=True) if a < 0 and s == 201)
    assert points_of(world.member_a)["available"] == 20 + 70 - 9 * debits >= 0
    assert counts()["ledger_transactions"] == 1 + 10 + debits
    db.session.rollback()
    assert verify() is None


def test_concurrent_first_postings_of_many_members(app, world):
    """Accounts are get-or-created race-safely while others post."""
    members = [world.member_a, world.member_a2, world.member_a3] * 4
    h = bearer(world.secretary_a)
    statuses = run_threads(len(members), lambda i: _adjust(app, h, members[i].id, 5))
    assert statuses == [201] * len(members)
    for m in (world.member_a, world.member_a2, world.member_a3):
        assert points_of(m)["available"] == 20
    assert counts()["ledger_accounts"] == 4  # three wallets, one adjustment account
    db.session.rollback()
    assert verify() is None


def test_concurrent_reversals_reverse_once(app, world):
    tx = give_points(world.member_a, 40)
    h = bearer(world.secretary_a)

    def work(_i):
        return (
            app.test_client()
            .post(f"/api/v1/transactions/{tx.id}/reverse", json={"reason": "并发冲正"}, headers=h)
            .status_code
        )

    statuses = run_threads(6, work)
    assert sorted(statuses) == [201] + [409] * 5, statuses
    assert points_of(world.member_a)["available"] == 0
    db.session.rollback()
    assert verify() is None


def test_concurrent_earns_of_one_delivery_post_once(app, world, delivery):
    d = delivery()

    def same_key(_i):
        with app.app_context(), atomic():
            return ledger.earn(
                None,
                member_id=world.member_a.id,
                community_id=world.community_a.id,
                delivery_id=d,
                points=24,
                minutes=120,
                policy_id=None,
            ).id

    ids = run_threads(8, same_key)
    assert len(set(ids)) == 1 and isinstance(ids[0], int), ids

    def other_keys(i):
        try:
            with app.app_context(), atomic():
                return ledger.earn(
                    None,
                    member_id=world.member_a2.id,
                    community_id=world.community_a.id,
                    delivery_id=d,
                    points=24,
                    minutes=120,
                    policy_id=None,
                    idempotency_key=f"settle-attempt-{i}",
                ).id
        except Conflict as exc:
            return exc

    results = run_threads(8, other_keys)
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, int))
    assert (
        points_of(world.member_a)["earned_total"]
        == points_of(world.member_a2)["earned_total"]
        == 24
    )
    db.session.rollback()
    assert verify() is None


def test_concurrent_holds_against_one_wallet(app, world, delivery):
    """The redemption pattern: many holds race for one wallet; exactly the affordable
    number succeed (service level, no HTTP)."""
    give_points(world.member_a, 100)
    post_earn(world.member_a, world.community_a, delivery_id=delivery(), points=24)

    def hold(i):
        try:
            with app.app_context(), atomic():
                wallet = ledger.account_for_member(world.member_a.id)
                held = ledger.account_for_member(world.member_a.id, "member_held")
                ledger.post_transaction(
                    kind="hold",
                    legs=[(wallet, -31), (held, 31)],
                    idempotency_key=f"hold-{i}",
                    actor=None,
                    redemption_id=i,
                )
            return True
        except InsufficientPoints:
            return False

    results = run_threads(10, hold)
    assert results.count(True) == 4, results  # 124 // 31
    assert points_of(world.member_a) == {"available": 0, "held": 124, "earned_total": 24}
    db.session.rollback()
    assert verify(BUILTIN_CHECKS) is None  # raw holds have no redemption
