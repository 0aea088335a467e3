"""The lean posting path (issue 21, item 2): the transaction and its entries written with
Core in two statements, no savepoint unless a refusal could follow a moved leg, one read
for the replay and the second-earn check, and the score buckets of a whole transaction
written once, at its commit, in one key order -- under real concurrency on both engines."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import AccountKind, AreaKind, LedgerEntry, LedgerTransaction, Role
from volunteer_market.services import ledger
from volunteer_market.services import verify as lv
from volunteer_market.services.errors import InsufficientPoints
from volunteer_market.services.rankings import RollupsOutOfSync

from ..factories import give_points, make_area, make_user, points_of, post_earn
from ..statements import Statements
from .conftest import counts, make_delivery_ids, raw, run_threads


def _earn(member_id: int, community_id: int, delivery_id: int, points: int):
    """A direct earn of 30 minutes as the system (inside the caller's ``atomic()``)."""
    return ledger.earn(
        None,
        member_id=member_id,
        community_id=community_id,
        delivery_id=delivery_id,
        points=points,
        minutes=30,
        policy_id=None,
    )


def _buckets(area_id: int) -> dict[int, int]:
    """``{points: members}`` of the area's all-time score buckets (fresh)."""
    rows = raw(
        "SELECT points, members FROM ranking_score_counts"
        " WHERE area_id = :a AND period_key = 'all'",
        a=area_id,
    )
    return {int(p): int(n) for p, n in rows}


def test_an_earn_writes_its_rows_in_one_statement_each_without_a_savepoint(world, delivery):
    d = delivery()
    with Statements() as sql:
        tx = post_earn(world.member_a, world.community_a, delivery_id=d, points=24)
    assert sql.starting("SAVEPOINT") == []  # an earn cannot be refused by a balance
    assert len(sql.starting("INSERT INTO ledger_transactions")) == 1
    entries = sql.starting("INSERT INTO ledger_entries")
    assert len(entries) == 1 and "), (" in sql.lines[entries[0]]  # both legs, one INSERT
    # the replay and the second-earn check are one read
    assert len(sql.starting("SELECT ledger_transactions.id, ledger_transactions.kind")) == 1
    # what the service returned is what was written, and nothing was written twice
    rows = raw(
        "SELECT id, account_id, amount FROM ledger_entries WHERE transaction_id = :t ORDER BY id",
        t=tx.id,
    )
    assert [(e.id, e.account_id, e.amount) for e in tx.entries] == [tuple(r) for r in rows]
    assert sorted(e.amount for e in tx.entries) == [-24, 24]
    assert raw("SELECT count(*) FROM ledger_transactions WHERE delivery_id = :d", d=d)[0][0] == 1
    assert lv.verify_all() == []


def test_posted_rows_are_persistent_in_the_session(world, delivery):
    d = delivery()
    with atomic():
        tx = _earn(world.member_a.id, world.community_a.id, d, 7)
        assert tx is not None
        state = sa.inspect(tx)
        assert state.persistent and not state.pending
        assert db.session.get(LedgerTransaction, tx.id) is tx  # the identity map has it
        for entry in tx.entries:
            assert sa.inspect(entry).persistent
            assert db.session.get(LedgerEntry, entry.id) is entry
        db.session.flush()  # a flush inserts nothing more
    assert counts()["ledger_entries"] == 2
    assert points_of(world.member_a)["available"] == 7


def test_a_refused_first_leg_caught_by_the_caller_moves_nothing(world):
    """No savepoint when the only leg that can be refused comes first in id order: a
    caller that catches the refusal and goes on commits only its other posting."""
    give_points(world.member_a, 10)
    with atomic():
        wallet = ledger.account_for_member(world.member_a.id)
        held = ledger.account_for_member(world.member_a.id, AccountKind.MEMBER_HELD)
    assert wallet.id < held.id
    before = counts()
    with Statements() as sql, atomic():
        with pytest.raises(InsufficientPoints):
            ledger.post_transaction(
                kind="hold", legs=[(wallet, -11), (held, 11)], idempotency_key="h1", actor=None
            )
        ledger.post_transaction(
            kind="hold", legs=[(wallet, -3), (held, 3)], idempotency_key="h2", actor=None
        )
    assert sql.starting("SAVEPOINT") == []
    after = counts()
    assert after["ledger_transactions"] == before["ledger_transactions"] + 1
    assert after["ledger_entries"] == before["ledger_entries"] + 2
    assert points_of(world.member_a) == {"available": 7, "held": 3, "earned_total": 0}
    assert lv.verify(lv.BUILTIN_CHECKS) is None  # raw holds have no redemption


def test_buckets_are_written_once_at_the_commit_after_every_posting(world):
    """Two members' earns in one transaction: the buckets of both in one INSERT, after
    the last ledger row (SQLAlchemy signals a savepoint's release as a commit too)."""
    deliveries = make_delivery_ids(world.community_a, world.member_a, 2)
    with Statements() as sql, atomic():
        for member, d in zip((world.member_a, world.member_a2), deliveries, strict=True):
            _earn(member.id, world.community_a.id, d, 5)
    buckets = sql.starting("INSERT INTO ranking_score_counts")
    assert len(buckets) == 1
    assert buckets[0] > max(sql.starting("INSERT INTO ledger_transactions"))
    assert buckets[0] > max(sql.starting("INSERT INTO ranking_members"))
    assert lv.verify_all() == []


def test_a_member_leaving_buckets_moves_them_in_three_statements_at_most(world, delivery):
    """Earns of members who already have points: the old buckets lose them (one UPDATE),
    the emptied ones are deleted (one DELETE), the new ones gain (the INSERT)."""
    first = [delivery(), delivery()]
    post_earn(world.member_a, world.community_a, delivery_id=first[0], points=5)
    post_earn(world.member_a2, world.community_a, delivery_id=first[1], points=5)
    more = [delivery(), delivery()]
    with Statements() as sql, atomic():
        for member, d in zip((world.member_a, world.member_a2), more, strict=True):
            _earn(member.id, world.community_a.id, d, 4)
    moves = [s for s in sql.lines if "ranking_score_counts" in s]
    assert [s.split()[0] for s in moves] == ["INSERT", "UPDATE", "DELETE"]
    left = raw("SELECT count(*) FROM ranking_score_counts WHERE points = 5")[0][0]
    assert left == 0  # both members left the 5-point buckets, which are gone
    assert lv.verify_all() == []


def test_a_missing_bucket_refuses_the_posting_and_changes_nothing(world, delivery):
    post_earn(world.member_a, world.community_a, delivery_id=delivery(), points=5)
    raw("DELETE FROM ranking_score_counts WHERE area_id = :a", a=world.community_a.id)
    before = counts()
    balances = points_of(world.member_a)
    with pytest.raises(RollupsOutOfSync), atomic():
        _earn(world.member_a.id, world.community_a.id, delivery(), 4)
    assert counts() == before
    assert points_of(world.member_a) == balances


def test_transactions_crossing_bucket_orders_do_not_deadlock(app, world):
    """Eight communities of one street, two new members each, and in each transaction
    two earns whose street and district buckets cross those of the next transaction
    (even threads 10 then 20 points, odd threads 20 then 10), with a pause between the
    earns. Written posting by posting, the buckets would be locked in opposite orders
    (a PostgreSQL deadlock); written at the commit in key order, every posting lands."""
    communities = [make_area(f"交叉社区{i}", AreaKind.COMMUNITY, world.street) for i in range(8)]
    pairs = [
        (make_user(f"cross_a{i}", (Role.MEMBER, c)), make_user(f"cross_b{i}", (Role.MEMBER, c)))
        for i, c in enumerate(communities)
    ]
    deliveries = [make_delivery_ids(c, world.member_a, 2) for c in communities]
    ids = [(c.id, a.id, b.id) for c, (a, b) in zip(communities, pairs, strict=True)]
    db.session.rollback()

    def work(i: int) -> list[int]:
        community_id, first, second = ids[i]
        amounts = (10, 20) if i % 2 == 0 else (20, 10)
        posted = []
        with app.app_context(), atomic():
            for member_id, points, d in zip((first, second), amounts, deliveries[i], strict=True):
                tx = _earn(member_id, community_id, d, points)
                assert tx is not None
                posted.append(tx.id)
                time.sleep(0.05)  # the other transactions reach their first earn meanwhile
        return posted

    results = run_threads(8, work, timeout=120)
    for r in results:
        assert not isinstance(r, BaseException), r
    assert len({t for r in results for t in r}) == 16
    assert _buckets(world.street.id) == {10: 8, 20: 8}
    assert lv.verify_all() == []


def test_a_rolled_back_savepoint_takes_only_its_own_bucket_moves(world):
    """The buckets wait for the commit, so a savepoint that rolls back an earn must drop
    that earn's moves and keep those of the earns before it and after it."""
    deliveries = make_delivery_ids(world.community_a, world.member_a, 3)

    with atomic():
        _earn(world.member_a.id, world.community_a.id, deliveries[0], 5)
        with pytest.raises(RuntimeError), db.session.begin_nested():
            _earn(world.member_a2.id, world.community_a.id, deliveries[1], 7)
            raise RuntimeError("the caller gives this part up")
        _earn(world.member_a3.id, world.community_a.id, deliveries[2], 9)
    assert _buckets(world.community_a.id) == {5: 1, 9: 1}
    assert points_of(world.member_a2)["available"] == 0
    assert lv.verify_all() == []
