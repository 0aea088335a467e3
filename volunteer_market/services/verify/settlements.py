"""The settlements check: every settlement line agrees with its earn (delivery,
member, minutes, points), totals add up, and a delivery is settled exactly when it
has a settlement. Moved here from ``services/settlement.py``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...models import (
    AccountKind,
    Delivery,
    DeliveryStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Settlement,
    SettlementPosting,
    TransactionKind,
)
from .frozen import frozen_violation
from .registry import Violation


@frozen_violation
def _line_not_its_earn() -> sa.Select[*tuple[Any, ...]]:
    sp, t = SettlementPosting, LedgerTransaction
    return (
        sa.select(sp.id, sp.transaction_id)
        .outerjoin(t, t.id == sp.transaction_id)
        .where(
            sp.transaction_id.is_not(None),
            sa.or_(
                t.id.is_(None),
                t.kind != TransactionKind.EARN,
                t.delivery_id != sp.delivery_id,
                t.member_id != sp.user_id,
                t.minutes != sp.minutes,
            ),
        )
        .order_by(sp.id)
        .limit(1)
    )


@frozen_violation
def _line_points_not_earned() -> sa.Select[*tuple[Any, ...]]:
    sp = SettlementPosting
    wallet_amount = (
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerEntry.transaction_id == sp.transaction_id,
            LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE,
        )
        .correlate(sp)
        .scalar_subquery()
    )
    return (
        sa.select(sp.id, sp.transaction_id)
        .where(sp.transaction_id.is_not(None), wallet_amount != sp.points)
        .order_by(sp.id)
        .limit(1)
    )


@frozen_violation
def _totals_not_lines() -> sa.Select[*tuple[Any, ...]]:
    sp, s = SettlementPosting, Settlement
    line_points = (
        sa.select(sa.func.coalesce(sa.func.sum(sp.points), 0))
        .where(sp.settlement_id == s.id)
        .correlate(s)
        .scalar_subquery()
    )
    line_minutes = (
        sa.select(sa.func.coalesce(sa.func.sum(sp.minutes), 0))
        .where(sp.settlement_id == s.id)
        .correlate(s)
        .scalar_subquery()
    )
    return (
        sa.select(s.id)
        .where(sa.or_(line_points != s.total_points, line_minutes != s.total_minutes))
        .order_by(s.id)
        .limit(1)
    )


@frozen_violation
def _status_not_settlement() -> sa.Select[*tuple[Any, ...]]:
    s = Settlement
    return (
        sa.select(Delivery.id)
        .outerjoin(s, s.delivery_id == Delivery.id)
        .where(
            sa.or_(
                sa.and_(Delivery.status == DeliveryStatus.SETTLED, s.id.is_(None)),
                sa.and_(Delivery.status != DeliveryStatus.SETTLED, s.id.is_not(None)),
            )
        )
        .order_by(Delivery.id)
        .limit(1)
    )


def check_settlements() -> Violation | None:
    """Settlement lines agree with their earns; totals add up; settled <=> settlement."""
    bad = _line_not_its_earn.first()
    if bad is not None:
        return Violation(
            "settlements",
            f"settlement line {bad.id} does not match its earn",
            transaction_id=bad.transaction_id,
        )
    bad = _line_points_not_earned.first()
    if bad is not None:
        return Violation(
            "settlements",
            f"settlement line {bad.id}: points differ from the earned amount",
            transaction_id=bad.transaction_id,
        )
    bad_id = _totals_not_lines.scalar()
    if bad_id is not None:
        return Violation("settlements", f"settlement {bad_id}: totals differ from its lines")
    unsettled = _status_not_settlement.scalar()
    if unsettled is not None:
        return Violation(
            "settlements", f"delivery {unsettled}: status and settlement record disagree"
        )
    return None
