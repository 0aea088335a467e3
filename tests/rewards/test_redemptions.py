"""Redemption at the service level: request, fulfil, cancel, reject, expire; ledger
postings, stock log, per-member limits, idempotency and the verify checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    AuditEntry,
    LedgerTransaction,
    Notification,
    Redemption,
    RedemptionStatus,
    StockChange,
    TransactionKind,
)
from volunteer_market.services import ledger, points_policy
from volunteer_market.services import redemptions as svc
from volunteer_market.services import rewards as reward_service
from volunteer_market.services import verify as verifier
from volunteer_market.services.errors import (
    Conflict,
    Forbidden,
    InsufficientPoints,
    NotFound,
    ValidationFailed,
)

from ..factories import give_points, make_reward, points_of, redeem
from .conftest import earn, snapshot, verified


def _reload(redemption: Redemption) -> Redemption:
    db.session.rollback()
    return db.session.get(Redemption, redemption.id)


def _stock(reward) -> int | None:
    db.session.rollback()
    return db.session.execute(
        sa.text("SELECT stock FROM rewards WHERE id = :id"), {"id": reward.id}
    ).scalar_one()


def test_contract_example_24_points_redeem_10(world):
    earn(world.member_a, world.community_a, 24)
    reward = make_reward(world.community_a, by=world.secretary_a, cost=10)
    issued = redeem(world.member_a, reward)
    assert points_of(world.member_a) == {"available": 14, "held": 10, "earned_total": 24}
    r = issued.redemption
    assert r.status == RedemptionStatus.HELD
    assert (r.quantity, r.cost_each, r.total) == (1, 10, 10)
    assert r.community_id == world.community_a.id
    assert len(issued.pickup_code) == 8 and issued.pickup_code.isdigit()
    assert svc.pickup_code(r) == issued.pickup_code
    # Only a keyed digest is stored, never the code.
    assert issued.pickup_code not in (r.pickup_code_hash, r.code_salt)
    hold = db.session.get(LedgerTransaction, r.hold_transaction_id)
    assert hold.kind == TransactionKind.HOLD and hold.redemption_id == r.id
    assert hold.community_id == world.community_a.id
    verified()


def test_fulfil_moves_held_points_to_the_sink(world):
    give_points(world.member_a, 50)
    reward = make_reward(world.community_a, cost=10, stock=5)
    issued = redeem(world.member_a, reward, 2)
    with atomic():
        svc.fulfil(world.secretary_a, issued.redemption, issued.pickup_code)
    r = _reload(issued.redemption)
    assert r.status == RedemptionStatus.FULFILLED
    assert r.decided_by_id == world.secretary_a.id
    final = db.session.get(LedgerTransaction, r.final_transaction_id)
    assert final.kind == TransactionKind.REDEEM
    assert points_of(world.member_a) == {"available": 30, "held": 0, "earned_total": 0}
    sink = ledger.balances  # noqa: F841 - the sink is checked by verify below
    assert _stock(reward) == 3  # handed over: the stock stays reserved
    kinds = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.object_type == "redemption")
    ).all()
    assert kinds == ["redemption.request", "redemption.fulfilled"]
    notes = db.session.scalars(
        sa.select(Notification.kind).where(Notification.user_id == world.member_a.id)
    ).all()
    assert "redemption.held" in notes and "redemption.fulfilled" in notes
    verified()


@pytest.mark.parametrize("how", ["cancel_member", "cancel_secretary", "reject", "expire"])
def test_release_returns_points_and_stock(world, how):
    give_points(world.member_a, 50)
    reward = make_reward(world.community_a, cost=10, stock=5)
    issued = redeem(world.member_a, reward, 3)
    assert _stock(reward) == 2
    r = issued.redemption
    with atomic():
        if how == "cancel_member":
            svc.cancel(world.member_a, r)
        elif how == "cancel_secretary":
            svc.cancel(world.secretary_a, r, "奖品暂缺")
        elif how == "reject":
            svc.reject(world.secretary_a, r, "不符合兑换条件")
        else:
            assert svc.expire_holds(r.expires_at + timedelta(seconds=1)) == [r.id]
    r = _reload(r)
    expected = {
        "cancel_member": RedemptionStatus.CANCELLED,
        "cancel_secretary": RedemptionStatus.CANCELLED,
        "reject": RedemptionStatus.REJECTED,
        "expire": RedemptionStatus.EXPIRED,
    }[how]
    assert r.status == expected
    assert points_of(world.member_a) == {"available": 50, "held": 0, "earned_total": 0}
    assert _stock(reward) == 5
    final = db.session.get(LedgerTransaction, r.final_transaction_id)
    assert final.kind == TransactionKind.RELEASE
    changes = db.session.scalars(
        sa.select(StockChange.kind)
        .where(StockChange.reward_id == reward.id)
        .order_by(StockChange.id)
    ).all()
    assert [c.value for c in changes] == ["initial", "reserve", "return"]
    verified()


def test_reject_requires_a_reason(world, unchanged):
    give_points(world.member_a, 50)
    issued = redeem(world.member_a, make_reward(world.community_a))
    with unchanged(), pytest.raises(ValidationFailed), atomic():
        svc.reject(world.secretary_a, issued.redemption, "   ")


def test_second_close_is_409_and_changes_nothing(world, unchanged):
    give_points(world.member_a, 50)
    issued = redeem(world.member_a, make_reward(world.community_a, stock=3))
    with atomic():
        svc.fulfil(world.secretary_a, issued.redemption, issued.pickup_code)
    r = _reload(issued.redemption)
    for act in (
        lambda: svc.fulfil(world.secretary_a, r, issued.pickup_code),
        lambda: svc.cancel(world.member_a, r),
        lambda: svc.reject(world.secretary_a, r, "晚了"),
    ):
        with unchanged(), pytest.raises(Conflict), atomic():
            act()
    with unchanged(), atomic():
        assert svc.expire_holds(r.expires_at + timedelta(days=1)) == []


def test_wrong_pickup_code_is_refused(world, unchanged):
    give_points(world.member_a, 50)
    issued = redeem(world.member_a, make_reward(world.community_a))
    wrong = f"{(int(issued.pickup_code) + 1) % 10**8:08d}"
    for code in ("123", "abcdefgh", "", None):  # malformed: refused, nothing written
        with unchanged(), pytest.raises(ValidationFailed) as info, atomic():
            svc.fulfil(world.secretary_a, issued.redemption, code)
        assert "pickup_code" in info.value.errors
    # a wrong code is refused and its failure kept (services/redemptions/lockout.py)
    with pytest.raises(ValidationFailed) as info, atomic():
        svc.fulfil(world.secretary_a, issued.redemption, wrong)
    assert "pickup_code" in info.value.errors
    assert _reload(issued.redemption).code_failures == 1
    # Spaces and dashes typed by a person are fine.
    spaced = f"{issued.pickup_code[:4]} {issued.pickup_code[4:]}"
    with atomic():
        svc.fulfil(world.secretary_a, issued.redemption, spaced)
    assert _reload(issued.redemption).status == RedemptionStatus.FULFILLED


@pytest.mark.parametrize("who", ["secretary_b", "member_b", "member_a2", "officer_street"])
def test_only_the_communitys_secretary_fulfils(world, unchanged, who):
    give_points(world.member_a, 50)
    issued = redeem(world.member_a, make_reward(world.community_a))
    with unchanged(), pytest.raises((Forbidden, NotFound)), atomic():
        svc.fulfil(world.users[who], issued.redemption, issued.pickup_code)


def test_a_secretary_never_fulfils_their_own_redemption(world, unchanged):
    from volunteer_market.models import Role

    from ..factories import make_user

    both = make_user(
        "sec_member", (Role.SECRETARY, world.community_a), (Role.MEMBER, world.community_a)
    )
    give_points(both, 50)
    issued = redeem(both, make_reward(world.community_a))
    with unchanged(), pytest.raises(Forbidden), atomic():
        svc.fulfil(both, issued.redemption, issued.pickup_code)
    with atomic():  # but may cancel it
        svc.cancel(both, issued.redemption)


def test_other_members_cannot_cancel(world, unchanged):
    give_points(world.member_a, 50)
    issued = redeem(world.member_a, make_reward(world.community_a))
    with unchanged(), pytest.raises(NotFound), atomic():
        svc.cancel(world.member_a2, issued.redemption)
    with unchanged(), pytest.raises(NotFound), atomic():
        svc.cancel(world.secretary_b, issued.redemption)


# --- refusals of a request ---------------------------------------------------------------


def test_insufficient_points_is_409_and_nothing_changes(world, unchanged):
    give_points(world.member_a, 9)
    reward = make_reward(world.community_a, cost=10, stock=5)
    with unchanged(), pytest.raises(InsufficientPoints):
        redeem(world.member_a, reward)


def test_out_of_stock_is_409_and_the_hold_rolls_back(world, unchanged):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, cost=10, stock=2)
    with unchanged(), pytest.raises(svc.OutOfStock):
        redeem(world.member_a, reward, 3)
    redeem(world.member_a, reward, 2)
    with unchanged(), pytest.raises(svc.OutOfStock):
        redeem(world.member_a, reward)
    assert _stock(reward) == 0


@pytest.mark.parametrize("quantity", [0, -1, 101, 10**12, 1.5, "2", True, None])
def test_bad_quantity_is_refused(world, unchanged, quantity):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, stock=5)
    with unchanged(), pytest.raises(ValidationFailed):
        redeem(world.member_a, reward, quantity)


def test_closed_rewards_are_409(world, unchanged):
    give_points(world.member_a, 100)
    now = datetime.now(UTC)
    retired = make_reward(world.community_a, name="旧券")
    with atomic():
        reward_service.retire_reward(world.secretary_a, retired)
    paused = make_reward(world.community_a, name="暂停", is_active=False)
    future = make_reward(world.community_a, name="未开始", active_from=now + timedelta(days=1))
    past = make_reward(world.community_a, name="已结束", active_to=now - timedelta(days=1))
    for reward in (retired, paused, future, past):
        with unchanged(), pytest.raises(Conflict):
            redeem(world.member_a, reward)


def test_out_of_scope_rewards(world, unchanged):
    give_points(world.member_b, 100)
    give_points(world.member_a, 100)
    reward_a = make_reward(world.community_a)
    with unchanged(), pytest.raises(NotFound):
        redeem(world.member_b, reward_a)  # another community: not even visible
    with unchanged(), pytest.raises(Forbidden):
        redeem(world.resident_a, reward_a)  # visible, but not a member
    with unchanged(), pytest.raises(Forbidden):
        redeem(world.secretary_a, reward_a)
    grid_reward = make_reward(world.areas["grid_a1"], name="网格券")
    with unchanged(), pytest.raises(NotFound):
        redeem(world.member_a, grid_reward)  # member_a is granted on the community, not the grid


def test_street_reward_goes_through_the_members_community(world):
    give_points(world.member_b, 100)
    reward = make_reward(world.street, by=world.officer_street, name="街道图书券", stock=10)
    issued = redeem(world.member_b, reward)
    assert issued.redemption.community_id == world.community_b.id
    with pytest.raises(NotFound), atomic():  # community A's secretary does not even see it
        svc.fulfil(world.secretary_a, issued.redemption, issued.pickup_code)
    with atomic():
        svc.fulfil(world.secretary_b, issued.redemption, issued.pickup_code)
    with pytest.raises(NotFound):
        redeem(world.member_c, reward)  # another street
    verified()


# --- per-member limits ----------------------------------------------------------------------


def test_per_member_limit_counts_held_and_fulfilled_only(world, unchanged):
    give_points(world.member_a, 1000)
    give_points(world.member_a2, 1000)
    reward = make_reward(world.community_a, per_member_limit=3, limit_period="all")
    first = redeem(world.member_a, reward, 2)
    with unchanged(), pytest.raises(svc.LimitReached):
        redeem(world.member_a, reward, 2)
    second = redeem(world.member_a, reward, 1)
    with atomic():
        svc.fulfil(world.secretary_a, second.redemption, second.pickup_code)
    with unchanged(), pytest.raises(svc.LimitReached):
        redeem(world.member_a, reward, 1)
    with atomic():
        svc.cancel(world.member_a, first.redemption)
    redeem(world.member_a, reward, 2)  # the cancelled two no longer count
    redeem(world.member_a2, reward, 3)  # per member
    verified()


@pytest.mark.parametrize(
    "period, first, second, allowed",
    [
        ("month", "2026-01-31T15:59:00+00:00", "2026-01-31T16:00:00+00:00", True),  # Feb 1 in China
        ("month", "2026-01-01T00:00:00+00:00", "2026-01-31T15:59:00+00:00", False),
        ("quarter", "2026-01-05T00:00:00+00:00", "2026-03-30T00:00:00+00:00", False),
        ("quarter", "2026-03-30T00:00:00+00:00", "2026-04-02T00:00:00+00:00", True),
        ("year", "2026-01-05T00:00:00+00:00", "2026-12-30T00:00:00+00:00", False),
        ("year", "2026-12-30T00:00:00+00:00", "2027-01-02T00:00:00+00:00", True),
        ("all", "2026-01-05T00:00:00+00:00", "2030-01-05T00:00:00+00:00", False),
    ],
)
def test_limit_periods_follow_local_calendar(world, period, first, second, allowed):
    give_points(world.member_a, 1000)
    reward = make_reward(world.community_a, per_member_limit=1, limit_period=period)
    t1, t2 = datetime.fromisoformat(first), datetime.fromisoformat(second)
    done = redeem(world.member_a, reward, now=t1)
    with atomic():
        svc.fulfil(world.secretary_a, done.redemption, done.pickup_code)
    if allowed:
        redeem(world.member_a, reward, now=t2)
    else:
        with pytest.raises(svc.LimitReached):
            redeem(world.member_a, reward, now=t2)
    verified()


# --- idempotency ---------------------------------------------------------------------------


def test_same_key_returns_the_first_redemption(world):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, stock=10)
    first = redeem(world.member_a, reward, 2, idempotency_key="k-1")
    before = snapshot()
    again = redeem(world.member_a, reward, 2, idempotency_key="k-1")
    assert again.replayed and again.redemption.id == first.redemption.id
    assert again.pickup_code == first.pickup_code
    assert snapshot() == before
    with pytest.raises(Conflict):
        redeem(world.member_a, reward, 3, idempotency_key="k-1")
    other = (
        redeem(world.member_a2, reward, 1, idempotency_key="k-1")
        if points_of(world.member_a2)["available"]
        else None
    )
    assert other is None  # member_a2 has no points; keys are per member anyway
    assert (
        redeem(world.member_a, reward, 2, idempotency_key="k-2").redemption.id
        != first.redemption.id
    )


# --- expiry of holds ------------------------------------------------------------------------


def test_hold_days_come_from_the_policy_and_expiry_is_idempotent(world):
    with atomic():
        points_policy.new_policy_version(None, world.community_a, redemption_hold_days=3)
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, stock=4)
    now = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    a = redeem(world.member_a, reward, 1, now=now)
    b = redeem(world.member_a, reward, 1, now=now + timedelta(days=1))
    assert a.redemption.expires_at == now + timedelta(days=3)
    with atomic():
        assert svc.expire_holds(now + timedelta(days=3, seconds=1)) == [a.redemption.id]
    with atomic():
        assert svc.expire_holds(now + timedelta(days=3, seconds=1)) == []
    assert _reload(b.redemption).status == RedemptionStatus.HELD
    with atomic():
        assert not svc.expire_hold(b.redemption.id, now)  # not due yet
    assert points_of(world.member_a)["held"] == 10
    assert _stock(reward) == 3
    verified()


def test_reminders_are_sent_once(world):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    issued = redeem(world.member_a, reward, now=now)
    soon = issued.redemption.expires_at - timedelta(days=1)
    with atomic():
        assert svc.remind_expiring(now) == 0
    with atomic():
        assert svc.remind_expiring(soon) == 1
    with atomic():
        assert svc.remind_expiring(soon) == 0
    kinds = db.session.scalars(
        sa.select(Notification.kind).where(Notification.kind == "redemption.expiring")
    ).all()
    assert kinds == ["redemption.expiring"]


# --- stock edits ----------------------------------------------------------------------------


def test_stock_edits_are_logged_and_chain_with_reservations(world):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, by=world.secretary_a, stock=2)
    first = redeem(world.member_a, reward)
    with atomic():
        reward_service.update_reward(world.secretary_a, reward, stock=10, stock_note="补货")
    with atomic():
        reward_service.update_reward(world.secretary_a, reward, stock=None)  # unlimited
    unlimited = redeem(world.member_a, reward)
    assert not unlimited.redemption.stock_reserved
    with atomic():
        reward_service.update_reward(world.secretary_a, reward, stock=4)
    with atomic():
        svc.cancel(world.member_a, first.redemption)  # returns its reserved item
    with atomic():
        svc.cancel(world.member_a, unlimited.redemption)  # reserved nothing: returns nothing
    assert _stock(reward) == 5
    rows = db.session.execute(
        sa.select(StockChange.kind, StockChange.stock_before, StockChange.stock_after)
        .where(StockChange.reward_id == reward.id)
        .order_by(StockChange.id)
    ).all()
    assert [(k.value, b, a) for k, b, a in rows] == [
        ("initial", None, 2),
        ("reserve", 2, 1),
        ("edit", 1, 10),
        ("edit", 10, None),
        ("edit", None, 4),
        ("return", 4, 5),
    ]
    audits = db.session.scalars(
        sa.select(AuditEntry.detail).where(AuditEntry.action == "reward.update")
    ).all()
    assert audits[0] == {"changed": {"stock": [1, 10]}}
    verified()


# --- verify catches tampering ------------------------------------------------------------------


def _raw(sql: str, **params) -> None:
    db.session.rollback()
    with db.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_verify_catches_a_stock_change_without_a_log_row(world):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, stock=5)
    redeem(world.member_a, reward)
    verified()
    _raw("UPDATE rewards SET stock = stock + 1 WHERE id = :id", id=reward.id)
    found = verifier.verify_all()
    assert [v.check for v in found] == ["reward_stock"]


def test_verify_catches_a_redemption_status_edited_behind_the_ledger(world):
    give_points(world.member_a, 100)
    issued = redeem(world.member_a, make_reward(world.community_a))
    other = redeem(world.member_a, make_reward(world.community_a, name="B"))
    with atomic():
        svc.cancel(world.member_a, other.redemption)
    final = _reload(other.redemption).final_transaction_id
    _raw(
        "UPDATE redemptions SET status = 'fulfilled', final_transaction_id = :t WHERE id = :id",
        t=final,
        id=issued.redemption.id,
    )
    found = verifier.verify_all()
    assert [v.check for v in found] == ["redemptions"]


def test_verify_catches_a_limit_overrun(world):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, per_member_limit=2)
    a = redeem(world.member_a, reward, 2)
    verified()
    _raw("UPDATE redemptions SET limit_applied = 1 WHERE id = :id", id=a.redemption.id)
    found = verifier.verify_all()
    assert [v.check for v in found] == ["redemptions"]
    assert "limit" in found[0].detail
