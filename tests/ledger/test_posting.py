"""Posting: balanced legs only, idempotent keys, conditional updates that never
overdraw, the service record, accounts, the hash chain and the head."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    GENESIS_HASH,
    AccountKind,
    AuditEntry,
    LedgerChainHead,
    LedgerHead,
    Notification,
    TransactionKind,
    chain_genesis,
)
from volunteer_market.services import ledger
from volunteer_market.services.errors import (
    AlreadyReversed,
    Conflict,
    Forbidden,
    InsufficientPoints,
    ValidationFailed,
)
from volunteer_market.services.verify import BUILTIN_CHECKS, verify

from ..factories import give_points, points_of, post_earn
from .conftest import counts, raw


def _wallet_and_held(user):
    with atomic():
        return ledger.account_for_member(user.id), ledger.account_for_member(
            user.id, AccountKind.MEMBER_HELD
        )


def _post(kind, legs, key, **refs):
    with atomic():
        return ledger.post_transaction(
            kind=kind, legs=legs, idempotency_key=key, actor=None, **refs
        )


def test_accounts_are_created_once_per_owner(world):
    with atomic():
        a = ledger.account_for_member(world.member_a.id)
        b = ledger.account_for_member(world.member_a.id)
        held = ledger.account_for_member(world.member_a.id, AccountKind.MEMBER_HELD)
        issuance = ledger.issuance_account(world.community_a.id)
        sink = ledger.sink_account(AccountKind.REDEMPTION_SINK, world.community_a.id)
        expiry = ledger.sink_account(AccountKind.EXPIRY_SINK, world.community_a.id)
        adjustment = ledger.adjustment_account(world.community_a.id)
        other = ledger.issuance_account(world.community_b.id)
    assert a.id == b.id
    assert len({a.id, held.id, issuance.id, sink.id, expiry.id, adjustment.id, other.id}) == 7
    assert (a.user_id, a.community_id, a.balance, a.earned) == (world.member_a.id, None, 0, 0)
    assert (issuance.user_id, issuance.community_id) == (None, world.community_a.id)
    with pytest.raises(ValueError), atomic():
        ledger.account_for_member(world.member_a.id, AccountKind.ISSUANCE)
    with pytest.raises(ValueError), atomic():
        ledger.sink_account(AccountKind.ADJUSTMENT, world.community_a.id)


def test_one_wallet_per_member_across_communities(world):
    give_points(world.member_a, 10, world.community_a)
    give_points(world.member_a, 5, world.community_b)  # system actor: any community
    assert points_of(world.member_a) == {"available": 15, "held": 0, "earned_total": 0}
    assert (
        raw("SELECT COUNT(*) FROM ledger_accounts WHERE user_id = :u", u=world.member_a.id)[0][0]
        == 1
    )


def test_writes_outside_atomic_are_refused(world):
    with pytest.raises(RuntimeError):
        ledger.account_for_member(world.member_a.id)


@pytest.mark.parametrize(
    "amounts",
    [
        [10, -9],  # does not sum to zero
        [10],  # one leg
        [0, 0],  # zero amounts
        [5, -5, 1],
    ],
)
def test_unbalanced_legs_are_refused(world, amounts):
    with atomic():
        accounts = [
            ledger.adjustment_account(world.community_a.id),
            ledger.issuance_account(world.community_a.id),
            ledger.sink_account(AccountKind.EXPIRY_SINK, world.community_a.id),
        ]
    before = counts()
    with pytest.raises(ValueError), atomic():
        ledger.post_transaction(
            kind="adjust",
            legs=list(zip(accounts, amounts, strict=False)),
            idempotency_key="k",
            actor=None,
        )
    assert counts() == before


def test_malformed_postings_are_refused(world):
    wallet, held = _wallet_and_held(world.member_a)
    with atomic():
        other = ledger.account_for_member(world.member_b.id)
        adj = ledger.adjustment_account(world.community_a.id)
    bad = [
        {"kind": "adjust", "legs": [(adj, 5), (adj, -5)]},  # same account twice
        {"kind": "adjust", "legs": [(wallet, 5), (other, -5)]},  # two members
        {"kind": "adjust", "legs": [(adj, -5), (wallet, True)]},  # bool amount
        {"kind": "adjust", "legs": [(adj, -5), (wallet, 5)], "member_id": world.member_b.id},
        {"kind": "reverse", "legs": [(adj, -5), (wallet, 5)]},  # reversal without target
        {"kind": "adjust", "legs": [(adj, -5), (wallet, 5)], "reverses_id": 1},
        {"kind": "earn", "legs": [(adj, -5), (wallet, 5)]},  # earn without delivery/minutes
        {"kind": "adjust", "legs": [(adj, -5), (wallet, 5)], "idempotency_key": ""},
        {"kind": "adjust", "legs": [(adj, -5), (wallet, 5)], "reason": "x" * 501},
        {"kind": "nonsense", "legs": [(adj, -5), (wallet, 5)]},
    ]
    before = counts()
    for case in bad:
        args = {"idempotency_key": "k", "actor": None, **case}
        with pytest.raises(ValueError), atomic():
            ledger.post_transaction(**args)
    assert counts() == before


def test_idempotent_key_returns_the_same_transaction(world):
    wallet, _held = _wallet_and_held(world.member_a)
    with atomic():
        adj = ledger.adjustment_account(world.community_a.id)
    first = _post("adjust", [(adj, -7), (wallet, 7)], "once", community_id=world.community_a.id)
    before = counts()
    again = _post("adjust", [(adj, -7), (wallet, 7)], "once", community_id=world.community_a.id)
    different_amount = _post("adjust", [(adj, -9), (wallet, 9)], "once")
    assert again.id == first.id == different_amount.id
    assert counts() == before
    assert points_of(world.member_a)["available"] == 7
    assert [e.amount for e in again.entries] == [7, -7] or sorted(
        e.amount for e in again.entries
    ) == [-7, 7]
    with pytest.raises(Conflict), atomic():  # the key belongs to another kind of posting
        ledger.post_transaction(
            kind="expire",
            legs=[(wallet, -1), (ledger.sink_account("expiry_sink", world.community_a.id), 1)],
            idempotency_key="once",
            actor=None,
        )


def test_insufficient_points_is_409_and_writes_nothing(world):
    give_points(world.member_a, 10)
    wallet, held = _wallet_and_held(world.member_a)
    before = counts()
    with pytest.raises(InsufficientPoints) as info, atomic():
        ledger.post_transaction(
            kind="hold", legs=[(wallet, -11), (held, 11)], idempotency_key="h", actor=None
        )
    assert info.value.status == 409 and isinstance(info.value, Conflict)
    assert counts() == before
    assert points_of(world.member_a) == {"available": 10, "held": 0, "earned_total": 0}
    with pytest.raises(InsufficientPoints), atomic():
        ledger.post_transaction(
            kind="release", legs=[(held, -1), (wallet, 1)], idempotency_key="r", actor=None
        )
    assert counts() == before
    assert verify(BUILTIN_CHECKS) is None  # raw holds have no redemption


def test_a_refused_posting_leaves_nothing_behind_in_the_same_transaction(world):
    """The savepoint: a caller that catches InsufficientPoints and goes on commits only
    what it posted successfully."""
    give_points(world.member_a, 10)
    wallet, held = _wallet_and_held(world.member_a)
    with atomic():
        sink = ledger.sink_account(AccountKind.REDEMPTION_SINK, world.community_a.id)
    with atomic():
        with pytest.raises(InsufficientPoints):
            # three legs: the sink is credited before the held account is found short
            ledger.post_transaction(
                kind="redeem",
                legs=[(sink, 30), (wallet, -10), (held, -20)],
                idempotency_key="x",
                actor=None,
            )
        ledger.post_transaction(
            kind="hold", legs=[(wallet, -4), (held, 4)], idempotency_key="ok", actor=None
        )
    assert points_of(world.member_a) == {"available": 6, "held": 4, "earned_total": 0}
    assert verify(BUILTIN_CHECKS) is None  # raw holds have no redemption


def test_earned_moves_only_with_earn_and_reversed_earn(world, delivery):
    c = world.community_a
    d = delivery()
    earn = post_earn(world.member_a, c, delivery_id=d, points=24, minutes=120)
    assert (earn.kind, earn.delivery_id, earn.minutes) == (TransactionKind.EARN, d, 120)
    assert points_of(world.member_a) == {"available": 24, "held": 0, "earned_total": 24}
    give_points(world.member_a, 30)
    assert points_of(world.member_a)["earned_total"] == 24  # adjustments are not earned
    wallet, held = _wallet_and_held(world.member_a)
    with atomic():
        redemption_sink = ledger.sink_account(AccountKind.REDEMPTION_SINK, c.id)
        expiry_sink = ledger.sink_account(AccountKind.EXPIRY_SINK, c.id)
    _post("hold", [(wallet, -20), (held, 20)], "hold", redemption_id=1, community_id=c.id)
    _post("release", [(held, -5), (wallet, 5)], "release", redemption_id=1, community_id=c.id)
    _post("redeem", [(held, -15), (redemption_sink, 15)], "redeem", redemption_id=1)
    _post("expire", [(wallet, -9), (expiry_sink, 9)], "expire", community_id=c.id)
    # redemption and expiry never lower the service record
    assert points_of(world.member_a) == {"available": 30, "held": 0, "earned_total": 24}
    with atomic():
        ledger.reverse(world.secretary_a, earn, "评分申诉成立")
    assert points_of(world.member_a) == {"available": 6, "held": 0, "earned_total": 0}
    assert verify(BUILTIN_CHECKS) is None  # raw holds have no redemption


def test_earn_once_per_delivery_and_member(world, delivery):
    c = world.community_a
    d = delivery()
    first = post_earn(world.member_a, c, delivery_id=d, points=24)
    assert post_earn(world.member_a, c, delivery_id=d, points=24).id == first.id  # retry
    other = post_earn(world.member_a2, c, delivery_id=d, points=24)  # another participant
    assert other.id != first.id
    with pytest.raises(Conflict), atomic():
        ledger.earn(
            None,
            member_id=world.member_a.id,
            community_id=c.id,
            delivery_id=d,
            points=24,
            minutes=120,
            policy_id=None,
            idempotency_key="another-key",
        )
    assert post_earn(world.member_a3, c, delivery_id=d, points=0) is None  # nothing posted
    with pytest.raises(ValueError), atomic():
        ledger.earn(
            None,
            member_id=world.member_a.id,
            community_id=c.id,
            delivery_id=d,
            points=-1,
            minutes=1,
            policy_id=None,
        )
    assert points_of(world.member_a)["earned_total"] == 24
    assert verify() is None


def test_database_refuses_a_second_earn_for_the_same_delivery(world, delivery):
    d = delivery()
    """The partial UNIQUE index is the last line behind the service's check."""
    earn = post_earn(world.member_a, world.community_a, delivery_id=d, points=5)
    with pytest.raises(IntegrityError):
        raw(
            "INSERT INTO ledger_transactions (kind, idempotency_key, member_id, community_id,"
            " delivery_id, minutes, created_at, prev_hash, hash) VALUES ('earn', 'dup', :m, :c,"
            " :d, 60, :t, :p, :h)",
            m=world.member_a.id,
            d=d,
            c=world.community_a.id,
            t=earn.created_at.replace(tzinfo=None),
            p=earn.hash,
            h="f" * 64,
        )


def test_database_refuses_negative_member_balance(world):
    give_points(world.member_a, 5)
    with pytest.raises(IntegrityError):
        raw("UPDATE ledger_accounts SET balance = -1 WHERE user_id = :u", u=world.member_a.id)
    with pytest.raises(IntegrityError):  # earned lives on the wallet only
        raw("UPDATE ledger_accounts SET earned = 3 WHERE kind = 'adjustment'")


def test_hash_chain_and_head(world, delivery):
    t1 = give_points(world.member_a, 5)
    t2 = post_earn(
        world.member_b, world.community_b, delivery_id=delivery(world.community_b), points=12
    )
    t3 = give_points(world.member_a, 8)  # community A again: the same chain as t1
    # one chain per community, each starting from its genesis (bound to the legacy
    # chain's last hash: none here, so GENESIS_HASH)
    assert (t1.chain_key, t2.chain_key) == (world.community_a.id, world.community_b.id)
    assert t1.prev_hash == chain_genesis(t1.chain_key, GENESIS_HASH)
    assert t2.prev_hash == chain_genesis(t2.chain_key, GENESIS_HASH)
    assert t3.chain_key == t1.chain_key and t3.prev_hash == t1.hash
    assert len({t1.hash, t2.hash, t3.hash}) == 3 and all(len(h) == 64 for h in (t1.hash,))
    heads = {
        h.chain_key: (h.last_transaction_id, h.last_hash, h.transaction_count)
        for h in db.session.execute(
            sa.select(LedgerChainHead).execution_options(populate_existing=True)
        ).scalars()
    }
    assert heads == {t1.chain_key: (t3.id, t3.hash, 2), t2.chain_key: (t2.id, t2.hash, 1)}
    # no legacy head on a new database: nothing is posted to the legacy chain any more
    assert db.session.execute(sa.select(LedgerHead)).scalar_one_or_none() is None
    # the hash covers the content: recomputing gives the stored value
    assert (
        ledger.hash_content(
            kind="earn",
            idempotency_key=t2.idempotency_key,
            member_id=t2.member_id,
            community_id=t2.community_id,
            delivery_id=t2.delivery_id,
            redemption_id=None,
            reverses_id=None,
            minutes=t2.minutes,
            policy_id=None,
            actor_id=None,
            reason=None,
            created_at=t2.created_at,
            entries=[(e.account_id, e.amount) for e in t2.entries],
            prev_hash=t2.prev_hash,
            chain_key=t2.chain_key,
        )
        == t2.hash
    )


# --- reversals -------------------------------------------------------------------------------


def test_reverse_posts_negated_legs_once(world):
    adj = give_points(world.member_a, 40)
    with atomic():
        rev = ledger.reverse(world.secretary_a, adj, "  录入错误  ")
    assert (rev.kind, rev.reverses_id, rev.reason) == (TransactionKind.REVERSE, adj.id, "录入错误")
    assert sorted((e.account_id, e.amount) for e in rev.entries) == sorted(
        (e.account_id, -e.amount) for e in adj.entries
    )
    assert points_of(world.member_a)["available"] == 0
    before = counts()
    with pytest.raises(AlreadyReversed) as info, atomic():
        ledger.reverse(world.secretary_a, adj, "again")
    assert info.value.status == 409
    with pytest.raises(Conflict), atomic():
        ledger.reverse(world.secretary_a, rev, "reverse the reversal")
    assert counts() == before
    audit = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.action == "ledger.reverse")
    ).scalar_one()
    assert audit.object_id == rev.id and audit.detail["reverses_id"] == adj.id
    note = db.session.execute(
        sa.select(Notification).where(Notification.kind == "points.reversed")
    ).scalar_one()
    assert note.user_id == world.member_a.id and note.params["amount"] == -40
    assert verify() is None


def test_reverse_refusals(world, delivery):
    adj = give_points(world.member_a, 10)
    earn = post_earn(world.member_a, world.community_a, delivery_id=delivery(), points=24)
    wallet, held = _wallet_and_held(world.member_a)
    hold = _post("hold", [(wallet, -5), (held, 5)], "hold", community_id=world.community_a.id)
    with atomic():
        expiry_sink = ledger.sink_account(AccountKind.EXPIRY_SINK, world.community_a.id)
    _post("expire", [(wallet, -25), (expiry_sink, 25)], "expire", community_id=world.community_a.id)
    assert points_of(world.member_a) == {"available": 4, "held": 5, "earned_total": 24}
    before = counts()
    with pytest.raises(InsufficientPoints), atomic():  # the 24 points are gone
        ledger.reverse(world.secretary_a, earn, "申诉")
    with pytest.raises(Conflict), atomic():
        ledger.reverse(world.secretary_a, hold, "holds go through the redemption")
    with pytest.raises(ValidationFailed), atomic():
        ledger.reverse(world.secretary_a, adj, "   ")
    for who in (world.secretary_b, world.officer_street, world.member_a, world.admin):
        with pytest.raises(Forbidden), atomic():
            ledger.reverse(who, adj, "not mine")
    assert counts() == before
    assert verify(BUILTIN_CHECKS) is None  # raw holds have no redemption


# --- adjustments -----------------------------------------------------------------------------


def test_adjust_by_secretary_is_audited_and_notified(world):
    with atomic():
        tx = ledger.adjust(world.secretary_a, world.member_a, 15, "社区大扫除补录")
    assert (tx.kind, tx.member_id, tx.community_id, tx.actor_id) == (
        TransactionKind.ADJUST,
        world.member_a.id,
        world.community_a.id,
        world.secretary_a.id,
    )
    assert ledger.member_delta(tx) == 15
    audit = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.action == "ledger.adjust")
    ).scalar_one()
    assert audit.actor_id == world.secretary_a.id and audit.area_id == world.community_a.id
    assert audit.detail == {"user_id": world.member_a.id, "amount": 15, "reason": "社区大扫除补录"}
    note = db.session.execute(
        sa.select(Notification).where(Notification.kind == "points.adjusted")
    ).scalar_one()
    assert note.user_id == world.member_a.id and note.params == {
        "amount": 15,
        "reason": "社区大扫除补录",
    }
    with atomic():
        ledger.adjust(world.secretary_a, world.member_a, -15, "撤回")
    assert points_of(world.member_a)["available"] == 0


def test_adjust_with_key_is_idempotent_and_audited_once(world):
    for _ in range(3):
        with atomic():
            ledger.adjust(world.secretary_a, world.member_a, 5, "x", idempotency_key="k-1")
    assert points_of(world.member_a)["available"] == 5
    assert counts()["ledger_transactions"] == 1 and counts()["audit_log"] >= 1
    actions = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.object_type == "ledger_transaction")
    ).all()
    assert actions == ["ledger.adjust"]


@pytest.mark.parametrize(
    ("amount", "reason", "error"),
    [
        (0, "x", ValidationFailed),
        (1.5, "x", ValidationFailed),
        (True, "x", ValidationFailed),
        (100_001, "x", ValidationFailed),
        (5, "", ValidationFailed),
        (5, "   ", ValidationFailed),
        (5, None, ValidationFailed),
        (5, "x" * 501, ValidationFailed),
        (-1, "overdraw", InsufficientPoints),
    ],
)
def test_adjust_refusals_change_nothing(world, amount, reason, error):
    before = counts()
    with pytest.raises(error), atomic():
        ledger.adjust(world.secretary_a, world.member_a, amount, reason)
    assert counts() == before


@pytest.mark.parametrize(
    "who",
    ["secretary_b", "secretary_c", "officer_street", "officer_district", "member_a2", "admin"],
)
def test_only_the_members_secretary_adjusts(world, who):
    before = counts()
    with pytest.raises(Forbidden), atomic():
        ledger.adjust(getattr(world, who), world.member_a, 5, "x")
    with pytest.raises(Forbidden), atomic():  # naming the community does not help
        ledger.adjust(getattr(world, who), world.member_a, 5, "x", world.community_a)
    assert counts() == before


def test_secretary_cannot_adjust_non_members(world):
    for target in (world.resident_a, world.grid_a1, world.member_b):
        with pytest.raises(Forbidden), atomic():
            ledger.adjust(world.secretary_a, target, 5, "x")
    with pytest.raises(Forbidden), atomic():  # member_a, but in another community
        ledger.adjust(world.secretary_a, world.member_a, 5, "x", world.community_b)


def test_history_and_balances(world, delivery):
    assert points_of(world.member_a) == {"available": 0, "held": 0, "earned_total": 0}
    assert ledger.history(world.member_a)["total"] == 0
    give_points(world.member_a, 5)
    post_earn(world.member_a, world.community_a, delivery_id=delivery(), points=24, minutes=120)
    give_points(world.member_b, 9)
    page = ledger.history(world.member_a, 1, 1)
    assert (page["total"], page["page"], page["per_page"]) == (2, 1, 1)
    [item] = page["items"]
    assert item["kind"] == "earn" and item["available_change"] == 24 and item["minutes"] == 120
    assert {e["account_kind"] for e in item["entries"]} == {"member_available", "issuance"}
    assert ledger.history(world.member_a, 2, 1)["items"][0]["kind"] == "adjust"
    months = ledger.earned_by_month(world.member_a)
    assert len(months) == 12 and months[-1][1] == 24 and sum(v for _m, v in months) == 24
