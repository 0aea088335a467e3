"""One hash chain per community (issue 21, item 4): tamper evidence per chain, anchors,
the legacy chain, real concurrency over 8 communities, and postings of two communities
that do not wait on each other (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    GENESIS_HASH,
    AreaKind,
    LedgerChainHead,
    LedgerTransaction,
    Role,
    chain_genesis,
)
from volunteer_market.services import ledger
from volunteer_market.services import verify as lv
from volunteer_market.services.ledger.anchors import write_anchor

from ..conftest import ON_POSTGRES
from ..factories import give_points, make_area, make_user, points_of
from .conftest import make_delivery_ids, raw, run_threads
from .legacy import insert_legacy_chain

ALL_BUT_ANCHORS = [n for n in lv.BUILTIN_CHECKS if n != "anchors"]


def _wallet(user) -> int:
    return raw(
        "SELECT id FROM ledger_accounts WHERE user_id = :u AND kind = 'member_available'",
        u=user.id,
    )[0][0]


@pytest.fixture
def chain_a(world):
    """Four adjustments in community A (one chain) and one in community B (as plain
    values: the tamper helpers end the session's transaction, expiring ORM objects)."""
    txs = [give_points(world.member_a, n, world.community_a) for n in (5, 9, 11, 13)]
    give_points(world.member_b, 3, world.community_b)
    out = [
        SimpleNamespace(
            **{
                c: getattr(t, c)
                for c in ("id", "hash", "prev_hash", "chain_key", "member_id", "community_id")
            },
            created_at=t.created_at,
        )
        for t in txs
    ]
    db.session.rollback()
    return out


def test_each_community_has_its_own_chain(chain_a, world):
    keys = {t.chain_key for t in chain_a}
    assert keys == {world.community_a.id}
    assert chain_a[0].prev_hash == chain_genesis(world.community_a.id, GENESIS_HASH)
    assert [t.prev_hash for t in chain_a[1:]] == [t.hash for t in chain_a[:-1]]
    assert lv.verify() is None


def test_altered_transaction_is_detected(chain_a, unlocked):
    raw("UPDATE ledger_transactions SET reason = '伪造' WHERE id = :t", t=chain_a[1].id)
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", chain_a[1].id)
    assert "altered" in found.detail


def test_moved_to_another_chain_is_detected(chain_a, world, unlocked):
    raw(
        "UPDATE ledger_transactions SET chain_key = :k WHERE id = :t",
        k=world.community_b.id,
        t=chain_a[3].id,
    )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", chain_a[3].id)


def test_inserted_transaction_is_detected(chain_a, world):
    """A forged transaction appended behind the service's back (INSERT is allowed),
    linked to the last one of the chain, with a self-consistent hash: the head (and the
    anchor) no longer match; one linked into the middle breaks the next link."""
    t = chain_a[-1]
    forged = ledger.hash_content(
        kind="adjust",
        idempotency_key="forged",
        member_id=t.member_id,
        community_id=t.community_id,
        delivery_id=None,
        redemption_id=None,
        reverses_id=None,
        minutes=None,
        policy_id=None,
        actor_id=None,
        reason="伪造",
        created_at=t.created_at,
        entries=[],
        prev_hash=chain_a[1].hash,
        chain_key=t.chain_key,
    )
    raw(
        "INSERT INTO ledger_transactions (kind, idempotency_key, member_id, community_id,"
        " reason, created_at, chain_key, prev_hash, hash) VALUES ('adjust', 'forged', :m, :c,"
        " '伪造', :at, :k, :p, :h)",
        m=t.member_id,
        c=t.community_id,
        at=t.created_at,
        k=t.chain_key,
        p=chain_a[1].hash,
        h=forged,
    )
    found = lv.verify(["hash_chain"])
    assert found is not None and found.check == "hash_chain"


def test_removed_transaction_is_detected(chain_a, world, unlocked):
    gone = chain_a[1]
    raw("DELETE FROM ledger_entries WHERE transaction_id = :t", t=gone.id)
    raw("DELETE FROM ledger_transactions WHERE id = :t", t=gone.id)
    raw("UPDATE ledger_accounts SET balance = balance - 9 WHERE id = :a", a=_wallet(world.member_a))
    raw(
        "UPDATE ledger_accounts SET balance = balance + 9 WHERE kind = 'adjustment'"
        " AND community_id = :c",
        c=world.community_a.id,
    )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", chain_a[2].id)
    assert f"hash of transaction {chain_a[0].id} (chain {world.community_a.id})" in found.detail


def test_reordered_transactions_are_detected(chain_a, world, unlocked):
    """Swap the whole content (and the entries' amounts) of two neighbours of one chain:
    every row is self-consistent, but the links now run backwards."""
    x, y = chain_a[1], chain_a[2]
    cols = "idempotency_key, reason, created_at, prev_hash, hash"
    rows = {
        r[0]: r[1:]
        for r in raw(
            f"SELECT id, {cols} FROM ledger_transactions WHERE id IN (:x, :y)",  # noqa: S608
            x=x.id,
            y=y.id,
        )
    }
    amounts = {
        t: raw("SELECT account_id, amount FROM ledger_entries WHERE transaction_id = :t", t=t)
        for t in (x.id, y.id)
    }
    raw(
        "UPDATE ledger_transactions SET idempotency_key = 'tmp', hash = :h WHERE id = :x",
        h="f" * 64,
        x=x.id,
    )
    for target, source in ((y.id, x.id), (x.id, y.id)):
        key, reason, at, prev, digest = rows[source]
        raw(
            "UPDATE ledger_transactions SET idempotency_key = :k, reason = :r, created_at = :at,"
            " prev_hash = :p, hash = :h WHERE id = :t",
            k=key,
            r=reason,
            at=at,
            p=prev,
            h=digest,
            t=target,
        )
        for account_id, amount in amounts[source]:
            raw(
                "UPDATE ledger_entries SET amount = :m WHERE transaction_id = :t"
                " AND account_id = :a",
                m=amount,
                t=target,
                a=account_id,
            )
    assert lv.verify(["balanced", "global_sum", "cached_balance"]) is None
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", x.id)
    assert "broken link: prev_hash" in found.detail


def test_truncated_tail_before_the_last_anchor_is_detected(chain_a, world, unlocked):
    with atomic():
        write_anchor()
    assert lv.verify() is None
    last, before = chain_a[-1], chain_a[-2]
    raw("DELETE FROM ledger_entries WHERE transaction_id = :t", t=last.id)
    raw("DELETE FROM ledger_transactions WHERE id = :t", t=last.id)
    raw(
        "UPDATE ledger_accounts SET balance = balance - 13 WHERE id = :a", a=_wallet(world.member_a)
    )
    raw(
        "UPDATE ledger_accounts SET balance = balance + 13 WHERE kind = 'adjustment'"
        " AND community_id = :c",
        c=world.community_a.id,
    )
    raw(
        "UPDATE ledger_chain_heads SET last_transaction_id = :t, last_hash = :h,"
        " transaction_count = transaction_count - 1 WHERE chain_key = :k",
        t=before.id,
        h=before.hash,
        k=last.chain_key,
    )
    # every link and the head are consistent again: only the anchor remembers
    assert lv.verify(ALL_BUT_ANCHORS) is None
    found = lv.verify()
    assert found.check == "anchors" and found.transaction_id == last.id
    assert "truncated" in found.detail


def test_anchors_link_and_cover_every_chain(chain_a, world):
    with atomic():
        first = write_anchor()
    give_points(world.member_a, 1, world.community_a)
    with atomic():
        second = write_anchor()
    assert second.prev_hash == first.hash and first.prev_hash == GENESIS_HASH
    assert {world.community_a.id, world.community_b.id} <= {
        int(k) for k, *_rest in __import__("json").loads(second.heads)
    }
    assert lv.verify() is None


def test_legacy_chain_still_verifies_and_binds_every_chain(world, unlocked):
    with db.engine.begin() as conn:
        legacy = insert_legacy_chain(
            conn, user_id=world.member_a.id, community_id=world.community_a.id, amounts=[4, 6, 8]
        )
    assert lv.verify() is None
    new = give_points(world.member_a, 2, world.community_a)
    assert new.chain_key == world.community_a.id
    assert new.prev_hash == chain_genesis(world.community_a.id, legacy[-1][1])
    assert lv.verify() is None
    # truncating the legacy tail (and moving its head) changes every chain's genesis
    raw("DELETE FROM ledger_entries WHERE transaction_id = :t", t=legacy[-1][0])
    raw("DELETE FROM ledger_transactions WHERE id = :t", t=legacy[-1][0])
    raw("UPDATE ledger_accounts SET balance = balance - 8 WHERE id = :a", a=_wallet(world.member_a))
    raw(
        "UPDATE ledger_accounts SET balance = balance + 8 WHERE kind = 'adjustment'"
        " AND community_id = :c",
        c=world.community_a.id,
    )
    raw(
        "UPDATE ledger_head SET last_transaction_id = :t, last_hash = :h, transaction_count = 2",
        t=legacy[-2][0],
        h=legacy[-2][1],
    )
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", new.id)


def test_altered_legacy_transaction_is_detected(world, unlocked):
    with db.engine.begin() as conn:
        legacy = insert_legacy_chain(
            conn, user_id=world.member_a.id, community_id=world.community_a.id, amounts=[4, 6]
        )
    raw("UPDATE ledger_transactions SET reason = '伪造' WHERE id = :t", t=legacy[0][0])
    found = lv.verify()
    assert (found.check, found.transaction_id) == ("hash_chain", legacy[0][0])


# --- concurrency --------------------------------------------------------------------


@pytest.fixture
def eight(world):
    """Eight communities under one street, a member in each, and one member in all."""
    communities = [make_area(f"并发社区{i}", AreaKind.COMMUNITY, world.street) for i in range(8)]
    members = [make_user(f"chain_m{i}", (Role.MEMBER, c)) for i, c in enumerate(communities)]
    shared = make_user("chain_shared", *[(Role.MEMBER, c) for c in communities])
    return communities, members, shared


def test_eight_communities_post_at_once(app, world, eight):
    communities, members, shared = eight
    rounds = 4
    deliveries = {c.id: make_delivery_ids(c, world.member_a, rounds) for c in communities}
    db.session.rollback()

    def work(i: int) -> list[int]:
        c, m = communities[i], members[i]
        ids: list[int] = []
        for r in range(rounds):
            with app.app_context():
                with atomic():
                    ids.append(
                        ledger.adjust(None, m, 3, "并发", c, idempotency_key=f"c{i}:r{r}").id
                    )
                with atomic():  # the same key again: replayed, not posted twice
                    again = ledger.adjust(None, m, 3, "并发", c, idempotency_key=f"c{i}:r{r}")
                    assert again.id == ids[-1]
                with atomic():  # the shared member's wallet and street buckets
                    tx = ledger.earn(
                        None,
                        member_id=shared.id,
                        community_id=c.id,
                        delivery_id=deliveries[c.id][r],
                        points=5 + i,
                        minutes=30,
                        policy_id=None,
                    )
                    assert tx is not None
                    ids.append(tx.id)
        return ids

    results = run_threads(8, work, timeout=300)
    for r in results:
        assert not isinstance(r, BaseException), r
    all_ids = [t for r in results for t in r]
    assert len(all_ids) == len(set(all_ids)) == 8 * rounds * 2  # none lost, none doubled
    db.session.rollback()
    for m in members:
        assert points_of(m)["available"] == 3 * rounds
    assert points_of(shared)["available"] == sum((5 + i) * rounds for i in range(8))
    heads = {
        h.chain_key: h.transaction_count
        for h in db.session.execute(sa.select(LedgerChainHead)).scalars()
    }
    for c in communities:
        assert heads[c.id] == 2 * rounds
        chain = db.session.execute(
            sa.select(LedgerTransaction.prev_hash, LedgerTransaction.hash)
            .where(LedgerTransaction.chain_key == c.id)
            .order_by(LedgerTransaction.id)
        ).all()
        assert chain[0].prev_hash == chain_genesis(c.id, GENESIS_HASH)
        assert [p for p, _h in chain[1:]] == [h for _p, h in chain[:-1]]  # linear
    assert lv.verify_all() == []


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite serialises every writer by design")
def test_two_communities_do_not_wait_on_each_other(app, world):
    """While one transaction holds community A's head, a posting in community B goes
    through at once; a second posting in A waits (here: runs into lock_timeout)."""
    give_points(world.member_a, 1, world.community_a)
    give_points(world.member_b, 1, world.community_b)
    db.session.rollback()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with app.app_context(), atomic():
            ledger.lock_head(world.community_a.id)
            held.set()
            release.wait(30)

    def post(community, member) -> tuple[str, float]:
        start = time.monotonic()
        with app.app_context():
            try:
                with atomic():
                    db.session.execute(sa.text("SET LOCAL lock_timeout = '1500ms'"))
                    ledger.adjust(None, member, 1, "并行", community)
            except OperationalError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                return ("lock timeout" if code == "55P03" else str(exc)), time.monotonic() - start
        return "posted", time.monotonic() - start

    with ThreadPoolExecutor(2) as pool:
        holding = pool.submit(holder)
        assert held.wait(10)
        try:
            other = pool.submit(post, world.community_b, world.member_b).result(20)
            same = pool.submit(post, world.community_a, world.member_a2).result(20)
        finally:
            release.set()
        holding.result(20)
    # B never waited on A's head: it would have run into the lock timeout
    assert other[0] == "posted" and other[1] < 1.5, other
    assert same[0] == "lock timeout" and same[1] >= 1.4, same
    db.session.rollback()
    assert lv.verify() is None


def test_anchor_command_appends_to_the_anchor_chain(runner, chain_a):
    first = runner.invoke(args=["ledger", "anchor"])
    second = runner.invoke(args=["ledger", "anchor"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.output.startswith("Anchor ") and second.output != first.output
    db.session.rollback()
    rows = raw("SELECT prev_hash, hash FROM ledger_anchors ORDER BY id")
    assert len(rows) == 2 and rows[1][0] == rows[0][1]
    assert lv.verify() is None


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite serialises every writer by design")
def test_two_heads_with_a_new_chain_do_not_deadlock_with_a_whole_ledger_lock(
    app, world, monkeypatch
):
    """A transaction taking two heads (an appeal's) of which the second chain is new, and
    a whole-ledger operation (``lock_all_heads``) starting between its two heads: the
    first must not hold a head while it waits for the registry the other holds."""
    from volunteer_market.services.ledger import head as head_module

    give_points(world.member_a, 1, world.community_a)  # A's chain exists; C's does not
    new_community = make_area("新链社区", AreaKind.COMMUNITY, world.street)
    db.session.rollback()
    creating, go_on = threading.Event(), threading.Event()
    real_create = head_module._create_head

    def slow_create(key: int) -> None:
        creating.set()  # A's head is held now
        go_on.wait(10)
        real_create(key)

    monkeypatch.setattr(head_module, "_create_head", slow_create)

    def two_heads() -> str:
        with app.app_context(), atomic():
            db.session.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            ledger.lock_heads([world.community_a.id, new_community.id])
        return "done"

    def whole_ledger() -> str:
        assert creating.wait(10)
        with app.app_context(), atomic():
            db.session.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            # the other goes on to create its second head while this one waits
            threading.Timer(0.3, go_on.set).start()
            ledger.lock_all_heads()
        return "done"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(two_heads)
        second = pool.submit(whole_ledger)
        results = [f.result(30) for f in (first, second)]
    assert results == ["done", "done"]
    db.session.rollback()
    heads = set(db.session.execute(sa.select(LedgerChainHead.chain_key)).scalars())
    assert {world.community_a.id, new_community.id} <= heads
