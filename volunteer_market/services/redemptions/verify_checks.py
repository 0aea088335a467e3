"""Ledger verify checks of redemptions and reward stock (``redemptions``, ``reward_stock``).

The checks below register with ``services.ledger_verify`` when the package is
imported: every hold/release/redeem matches its redemption, each member's held
balance equals their held redemptions, per-member limits hold, and every reward's
stock is accounted for by its stock changes. The code from the section heading on
is kept exactly as it was in ``services/redemptions.py`` (the verify package takes
it over).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...database import frozen_violation
from ...models import (
    COUNTED_STATUSES,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Redemption,
    RedemptionStatus,
    Reward,
    StockChange,
    StockChangeKind,
    TransactionKind,
)
from .. import ledger_verify

# --- ledger verify: redemptions and stock -------------------------------------------------


def _held_leg() -> Any:
    """Per transaction, its entry on a held account (for the checks below)."""
    return (
        sa.select(LedgerEntry.transaction_id, LedgerEntry.amount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.kind == AccountKind.MEMBER_HELD)
        .subquery()
    )


@frozen_violation
def _hold_not_matching() -> sa.Select[Any]:
    # Hold: kind hold, same member and redemption, +total on the held account.
    r, t, held_leg = Redemption, LedgerTransaction, _held_leg()
    return (
        sa.select(r.id, t.id.label("tx"))
        .outerjoin(t, t.id == r.hold_transaction_id)
        .outerjoin(held_leg, held_leg.c.transaction_id == r.hold_transaction_id)
        .where(
            sa.or_(
                t.id.is_(None),
                t.kind != TransactionKind.HOLD,
                t.member_id != r.member_id,
                t.redemption_id.is_distinct_from(r.id),
                held_leg.c.amount.is_distinct_from(r.total),
            )
        )
        .order_by(r.id)
        .limit(1)
    )


@frozen_violation
def _final_not_matching() -> sa.Select[Any]:
    # Final: redeem when fulfilled, release when cancelled/rejected/expired; -total held.
    r, t, held_leg = Redemption, LedgerTransaction, _held_leg()
    expected_kind = sa.case(
        (r.status == RedemptionStatus.FULFILLED, TransactionKind.REDEEM.value),
        else_=TransactionKind.RELEASE.value,
    )
    return (
        sa.select(r.id, t.id.label("tx"))
        .outerjoin(t, t.id == r.final_transaction_id)
        .outerjoin(held_leg, held_leg.c.transaction_id == r.final_transaction_id)
        .where(
            r.status != RedemptionStatus.HELD,
            sa.or_(
                t.id.is_(None),
                sa.cast(t.kind, sa.String) != expected_kind,
                t.member_id != r.member_id,
                t.redemption_id.is_distinct_from(r.id),
                held_leg.c.amount.is_distinct_from(-r.total),
            ),
        )
        .order_by(r.id)
        .limit(1)
    )


@frozen_violation
def _stray_hold_transaction() -> sa.Select[Any]:
    # Every hold/release/redeem belongs to a redemption of the same member, and is
    # that redemption's hold or final transaction.
    r, t = Redemption, LedgerTransaction
    return (
        sa.select(t.id)
        .outerjoin(r, r.id == t.redemption_id)
        .where(
            t.kind.in_([TransactionKind.HOLD, TransactionKind.RELEASE, TransactionKind.REDEEM]),
            sa.or_(
                r.id.is_(None),
                r.member_id != t.member_id,
                sa.and_(
                    r.hold_transaction_id != t.id,
                    r.final_transaction_id.is_distinct_from(t.id),
                ),
            ),
        )
        .order_by(t.id)
        .limit(1)
    )


@frozen_violation
def _held_balance_not_held() -> sa.Select[Any]:
    # Held balance = total of the member's held redemptions.
    r = Redemption
    held_sums = (
        sa.select(r.member_id, sa.func.sum(r.total).label("total"))
        .where(r.status == RedemptionStatus.HELD)
        .group_by(r.member_id)
        .subquery()
    )
    return (
        sa.select(LedgerAccount.id, LedgerAccount.balance, held_sums.c.total)
        .outerjoin(held_sums, held_sums.c.member_id == LedgerAccount.user_id)
        .where(
            LedgerAccount.kind == AccountKind.MEMBER_HELD,
            LedgerAccount.balance != sa.func.coalesce(held_sums.c.total, 0),
        )
        .order_by(LedgerAccount.id)
        .limit(1)
    )


@frozen_violation
def _over_limit() -> sa.Select[Any]:
    # Per-member limits: within each (member, reward, period), the running quantity of
    # held + fulfilled redemptions never exceeds the limit each one was checked against.
    r = Redemption
    running = (
        sa.select(
            r.id,
            r.limit_applied,
            sa.func.sum(r.quantity)
            .over(partition_by=(r.member_id, r.reward_id, r.period_key), order_by=r.id)
            .label("running"),
        )
        .where(r.limit_applied.is_not(None), r.status.in_(list(COUNTED_STATUSES)))
        .subquery()
    )
    return (
        sa.select(running.c.id, running.c.running, running.c.limit_applied)
        .where(running.c.running > running.c.limit_applied)
        .order_by(running.c.id)
        .limit(1)
    )


@ledger_verify.register_check("redemptions")
def _check_redemptions() -> ledger_verify.Violation | None:
    """Every redemption's hold and final transaction match it; every hold/release/redeem
    belongs to a redemption of the same member; held balances equal held redemptions;
    per-member limits hold."""
    Violation = ledger_verify.Violation
    row = _hold_not_matching.first()
    if row is not None:
        return Violation(
            "redemptions",
            f"redemption {row.id}: its hold does not match it",
            transaction_id=row.tx,
        )
    row = _final_not_matching.first()
    if row is not None:
        return Violation(
            "redemptions",
            f"redemption {row.id}: its final transaction does not match its status",
            transaction_id=row.tx,
        )
    row = _stray_hold_transaction.first()
    if row is not None:
        return Violation(
            "redemptions",
            "a hold/release/redeem is not the hold or final transaction of a redemption"
            " of its member",
            transaction_id=row.id,
        )
    row = _held_balance_not_held.first()
    if row is not None:
        return Violation(
            "redemptions",
            f"held balance {row.balance} but held redemptions total {row.total or 0}",
            account_id=row.id,
        )
    row = _over_limit.first()
    if row is not None:
        return Violation(
            "redemptions",
            f"redemption {row.id}: {row.running} items in its period, limit {row.limit_applied}",
        )
    return None


@frozen_violation
def _negative_stock() -> sa.Select[Any]:
    return sa.select(Reward.id).where(Reward.stock < 0).order_by(Reward.id).limit(1)


@frozen_violation
def _stock_change_not_chained() -> sa.Select[Any]:
    s = StockChange
    chained = sa.select(
        s.id,
        s.reward_id,
        s.stock_before,
        sa.func.lag(s.stock_after).over(partition_by=s.reward_id, order_by=s.id).label("prev"),
        sa.func.row_number().over(partition_by=s.reward_id, order_by=s.id).label("n"),
    ).subquery()
    return (
        sa.select(chained.c.id, chained.c.reward_id)
        .where(chained.c.n > 1, chained.c.stock_before.is_distinct_from(chained.c.prev))
        .order_by(chained.c.id)
        .limit(1)
    )


@frozen_violation
def _stock_not_last_change() -> sa.Select[Any]:
    s = StockChange
    last = (
        sa.select(s.reward_id, sa.func.max(s.id).label("last_id")).group_by(s.reward_id).subquery()
    )
    return (
        sa.select(Reward.id, Reward.stock, s.stock_after)
        .outerjoin(last, last.c.reward_id == Reward.id)
        .outerjoin(s, s.id == last.c.last_id)
        .where(sa.or_(last.c.last_id.is_(None), Reward.stock.is_distinct_from(s.stock_after)))
        .order_by(Reward.id)
        .limit(1)
    )


@frozen_violation
def _stock_changes_not_status() -> sa.Select[Any]:
    r, s = Redemption, StockChange
    reserves = sa.func.count(sa.case((s.kind == StockChangeKind.RESERVE, 1)))
    returns = sa.func.count(sa.case((s.kind == StockChangeKind.RETURN, 1)))
    expected_returns = sa.case(
        (r.status.in_(list(COUNTED_STATUSES)), 0),
        else_=1,
    )
    return (
        sa.select(r.id)
        .outerjoin(s, s.redemption_id == r.id)
        .group_by(r.id, r.stock_reserved, r.status)
        .having(
            sa.or_(
                sa.and_(r.stock_reserved.is_(True), reserves != 1),
                sa.and_(r.stock_reserved.is_(True), returns != expected_returns),
                sa.and_(r.stock_reserved.is_(False), reserves + returns != 0),
            )
        )
        .order_by(r.id)
        .limit(1)
    )


@ledger_verify.register_check("reward_stock")
def _check_reward_stock() -> ledger_verify.Violation | None:
    """Stock is never negative; each reward's stock changes chain (before = previous
    after) and end at its stock; each reserved redemption has one reserve and, once
    returned, one return."""
    Violation = ledger_verify.Violation
    row = _negative_stock.first()
    if row is not None:
        return Violation("reward_stock", f"reward {row.id} has negative stock")
    row = _stock_change_not_chained.first()
    if row is not None:
        return Violation(
            "reward_stock",
            f"reward {row.reward_id}: stock change {row.id} does not follow the previous one",
        )
    row = _stock_not_last_change.first()
    if row is not None:
        return Violation(
            "reward_stock",
            f"reward {row.id}: stock {row.stock} but its stock changes end at {row.stock_after}",
        )
    row = _stock_changes_not_status.first()
    if row is not None:
        return Violation(
            "reward_stock", f"redemption {row.id}: its stock changes do not match its status"
        )
    return None
