"""Wallet expiry by policy: the FIFO rule, idempotency, the service record untouched,
"expiring soon", and the CLI commands (``wallet expire``, ``redemptions expire``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import LedgerTransaction, Notification, TransactionKind
from volunteer_market.services import ledger, points_policy
from volunteer_market.services import redemptions as redemption_service
from volunteer_market.services import wallet_expiry as svc

from ..factories import make_reward, points_of, redeem
from .conftest import earn, verified


def _expiring_policy(community) -> None:
    with atomic():
        points_policy.new_policy_version(None, community, expiry_rule="end_of_next_year")


def _at(when: datetime, fn):  # type: ignore[no-untyped-def]
    """Run ``fn`` with the ledger's clock at ``when`` (postings are dated by utcnow)."""
    from unittest import mock

    with mock.patch("volunteer_market.services.ledger.posting.utcnow", return_value=when):
        return fn()


def _earn(member, community, when: datetime, points: int, _unused: int = 0):  # type: ignore[no-untyped-def]
    return earn(member, community, points, when=when)


def _spend(member, reward, when: datetime, quantity: int = 1):  # type: ignore[no-untyped-def]
    issued = _at(when, lambda: redeem(member, reward, quantity, now=when))
    secretary = _secretary_of(reward)

    def go():  # type: ignore[no-untyped-def]
        with atomic():
            redemption_service.fulfil(secretary, issued.redemption, issued.pickup_code, now=when)

    _at(when, go)
    return issued


def _secretary_of(reward):  # type: ignore[no-untyped-def]
    from ..factories import secretary_of

    return secretary_of(reward.area)


def d(y: int, m: int, day: int, h: int = 4) -> datetime:
    return datetime(y, m, day, h, tzinfo=UTC)


def test_the_fifo_rule_example(world):
    """100 earned in 2025, 30 spent in 2025, 50 earned and 40 spent in 2026:
    on 2027-01-01 the 30 points left of 2025 expire."""
    _expiring_policy(world.community_a)
    reward = make_reward(world.community_a, cost=10)
    _earn(world.member_a, world.community_a, d(2025, 3, 1), 100, 1)
    _spend(world.member_a, reward, d(2025, 6, 1), 3)
    _earn(world.member_a, world.community_a, d(2026, 3, 1), 50, 2)
    _spend(world.member_a, reward, d(2026, 6, 1), 4)
    assert points_of(world.member_a) == {"available": 80, "held": 0, "earned_total": 150}
    plan = svc.plan_expiry(world.member_a.id, date(2026, 12, 31))
    assert plan.amount == 0  # 2025's points are good until 31 December 2026
    with atomic():
        tx = svc.expire_member(world.member_a.id, date(2027, 1, 1))
    assert (
        tx.kind == TransactionKind.EXPIRE
        and tx.idempotency_key == f"expire:{world.member_a.id}:2025"
    )
    assert points_of(world.member_a) == {"available": 50, "held": 0, "earned_total": 150}
    # Idempotent: the same round never posts twice.
    with atomic():
        assert svc.expire_member(world.member_a.id, date(2027, 6, 1)) is None
    # Next round: the 50 of 2026 expire on 1 January 2028 (nothing was spent since).
    with atomic():
        assert len(svc.expire_wallets(date(2028, 1, 1))) == 1
    assert points_of(world.member_a) == {"available": 0, "held": 0, "earned_total": 150}
    notes = db.session.scalars(
        sa.select(Notification.kind).where(Notification.kind == "points.expired")
    ).all()
    assert len(notes) == 2
    verified()


def test_spending_first_uses_the_oldest_points(world):
    _expiring_policy(world.community_a)
    reward = make_reward(world.community_a, cost=10)
    _earn(world.member_a, world.community_a, d(2025, 3, 1), 40, 1)
    _earn(world.member_a, world.community_a, d(2026, 2, 1), 60, 2)
    _spend(world.member_a, reward, d(2026, 5, 1), 5)  # 50 spent: the 40 of 2025 first
    with atomic():
        assert svc.expire_member(world.member_a.id, date(2027, 1, 1)) is None
    assert points_of(world.member_a)["available"] == 50


def test_held_points_never_expire_and_come_back_later(world):
    _expiring_policy(world.community_a)
    reward = make_reward(world.community_a, cost=10)
    _earn(world.member_a, world.community_a, d(2025, 3, 1), 30, 1)
    issued = _at(d(2026, 12, 20), lambda: redeem(world.member_a, reward, 3, now=d(2026, 12, 20)))
    with atomic():
        assert svc.expire_member(world.member_a.id, date(2027, 1, 1)) is None  # all held
    assert points_of(world.member_a) == {"available": 0, "held": 30, "earned_total": 30}

    def cancel():  # type: ignore[no-untyped-def]
        with atomic():
            redemption_service.cancel(world.member_a, issued.redemption, now=d(2027, 1, 2))

    _at(d(2027, 1, 2), cancel)
    # The released points are still 2025's: the next round takes them.
    with atomic():
        tx = svc.expire_member(world.member_a.id, date(2028, 1, 1))
    assert tx is not None and -ledger.member_delta(tx) == 30
    verified()


def test_no_expiry_without_the_policy_and_protected_credits(world):
    _earn(world.member_b, world.community_b, d(2024, 1, 5), 70, 1)
    with atomic():
        assert svc.expire_wallets(date(2030, 1, 1)) == []
    assert points_of(world.member_b)["available"] == 70
    # A member with credits from an expiring and a never-expiring community keeps
    # the never-expiring ones.
    from volunteer_market.models import Role

    from ..factories import make_user

    both = make_user(
        "two_homes", (Role.MEMBER, world.community_a), (Role.MEMBER, world.community_b)
    )
    _expiring_policy(world.community_a)
    _earn(both, world.community_a, d(2024, 1, 5), 20, 2)
    _earn(both, world.community_b, d(2024, 1, 5), 15, 3)
    with atomic():
        tx = svc.expire_member(both.id, date(2026, 1, 1))
    assert -ledger.member_delta(tx) == 20 and tx.community_id == world.community_a.id
    assert points_of(both) == {"available": 15, "held": 0, "earned_total": 35}
    verified()


def test_expiring_soon(world):
    _expiring_policy(world.community_a)
    _earn(world.member_a, world.community_a, d(2025, 3, 1), 100, 1)
    _earn(world.member_a, world.community_a, d(2026, 3, 1), 20, 2)
    soon = svc.expiring_soon(world.member_a, date(2026, 11, 1))
    assert soon == {"amount": 100, "expires_on": date(2026, 12, 31)}
    assert svc.expiring_soon(world.member_b, date(2026, 11, 1)) is None


def test_expired_points_can_be_reversed_by_the_secretary(world):
    _expiring_policy(world.community_a)
    _earn(world.member_a, world.community_a, d(2024, 3, 1), 25, 1)
    with atomic():
        tx = svc.expire_member(world.member_a.id, date(2026, 1, 1))
    with atomic():
        ledger.reverse(world.secretary_a, tx, "补发：过期前已申请兑换")
    assert points_of(world.member_a) == {"available": 25, "held": 0, "earned_total": 25}
    verified()


# --- the CLI -------------------------------------------------------------------------------------


def test_wallet_expire_command(runner, world):
    _expiring_policy(world.community_a)
    _earn(world.member_a, world.community_a, d(2024, 3, 1), 25, 1)
    _earn(world.member_a2, world.community_a, d(2024, 3, 1), 5, 2)
    db.session.remove()
    result = runner.invoke(args=["wallet", "expire", "--as-of", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "expired 30 points of 2 members" in result.output
    result = runner.invoke(args=["wallet", "expire", "--as-of", "2026-01-01"])
    assert "expired 0 points of 0 members" in result.output
    assert runner.invoke(args=["wallet", "expire", "--as-of", "soon"]).exit_code != 0
    assert points_of(world.member_a) == {"available": 0, "held": 0, "earned_total": 25}
    verified()


def test_redemptions_expire_command(runner, world):
    from ..factories import give_points

    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, stock=5)
    old = datetime.now(UTC) - timedelta(days=40)
    for _ in range(3):
        redeem(world.member_a, reward, now=old)
    fresh = redeem(world.member_a, reward)
    db.session.remove()
    result = runner.invoke(args=["redemptions", "expire"])
    assert result.exit_code == 0, result.output
    assert "Expired 3 of 3 due redemptions" in result.output
    soon = (fresh.redemption.expires_at - timedelta(days=1)).isoformat()
    result = runner.invoke(args=["redemptions", "expire", "--now", soon])
    assert "Expired 0 of 0" in result.output and "reminded 1" in result.output
    assert runner.invoke(args=["redemptions", "expire", "--now", "2026-01-01"]).exit_code != 0
    db.session.rollback()
    assert db.session.scalar(sa.text("SELECT stock FROM rewards")) == 4
    released = db.session.scalar(
        sa.select(sa.func.count()).where(LedgerTransaction.kind == TransactionKind.RELEASE)
    )
    assert released == 3
    verified()


@pytest.mark.parametrize("as_of", ["2026-01-01", "2027-07-01"])
def test_earned_is_never_lowered(world, as_of):
    _expiring_policy(world.community_a)
    _earn(world.member_a, world.community_a, d(2020, 3, 1), 60, 1)
    with atomic():
        svc.expire_wallets(date.fromisoformat(as_of))
    assert points_of(world.member_a) == {"available": 0, "held": 0, "earned_total": 60}
