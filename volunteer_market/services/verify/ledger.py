"""The ledger's own checks: balance, sums, cached balances, earned, non-negative
balances, one earn per delivery and member, reversals.

Read-only SQL aggregates over the whole ledger (``frozen_violation`` queries: empty on
a healthy ledger, answered by one probe when every check runs). Each check reports
its first violation (lowest id). The hash chain and the head are in ``chain.py``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ...models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction, TransactionKind
from .frozen import frozen, frozen_violation
from .registry import Violation

_member_kinds = [AccountKind.MEMBER_AVAILABLE, AccountKind.MEMBER_HELD]


@frozen_violation
def _unbalanced() -> sa.Select[*tuple[Any, ...]]:
    t, e = LedgerTransaction, LedgerEntry
    total = sa.func.coalesce(sa.func.sum(e.amount), 0)
    count = sa.func.count(e.id)
    return (
        sa.select(t.id, count.label("n"), total.label("total"))
        .outerjoin(e, e.transaction_id == t.id)
        .group_by(t.id)
        .having(sa.or_(count < 2, total != 0))
        .order_by(t.id)
        .limit(1)
    )


def check_balanced() -> Violation | None:
    """Every transaction has at least two entries and they sum to zero."""
    row = _unbalanced.first()
    if row is None:
        return None
    return Violation(
        "balanced",
        f"{row.n} entries summing to {row.total} (needs >= 2 summing to 0)",
        transaction_id=row.id,
    )


@frozen
def _entries_total() -> sa.Select[*tuple[Any, ...]]:
    return sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))


def check_global_sum() -> Violation | None:
    """All entries of the ledger sum to zero."""
    total = int(_entries_total.scalar())
    if total == 0:
        return None
    return Violation("global_sum", f"all entries sum to {total}, not 0")


@frozen_violation
def _stale_balance() -> sa.Select[*tuple[Any, ...]]:
    sums = (
        sa.select(LedgerEntry.account_id, sa.func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    actual = sa.func.coalesce(sums.c.total, 0)
    return (
        sa.select(LedgerAccount.id, LedgerAccount.balance, actual.label("actual"))
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance != actual)
        .order_by(LedgerAccount.id)
        .limit(1)
    )


def check_cached_balance() -> Violation | None:
    """Every account's cached balance equals the sum of its entries."""
    row = _stale_balance.first()
    if row is None:
        return None
    return Violation(
        "cached_balance",
        f"cached balance {row.balance} but entries sum to {row.actual}",
        account_id=row.id,
    )


@frozen_violation
def _stale_earned() -> sa.Select[*tuple[Any, ...]]:
    t, e = LedgerTransaction, LedgerEntry
    original = aliased(LedgerTransaction)
    earned_sums = (
        sa.select(e.account_id, sa.func.sum(e.amount).label("total"))
        .join(t, t.id == e.transaction_id)
        .outerjoin(original, original.id == t.reverses_id)
        .where(
            sa.or_(
                t.kind == TransactionKind.EARN,
                sa.and_(t.kind == TransactionKind.REVERSE, original.kind == TransactionKind.EARN),
            )
        )
        .group_by(e.account_id)
        .subquery()
    )
    expected = sa.case(
        (
            LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE,
            sa.func.coalesce(earned_sums.c.total, 0),
        ),
        else_=0,
    )
    return (
        sa.select(LedgerAccount.id, LedgerAccount.earned, expected.label("expected"))
        .outerjoin(earned_sums, earned_sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.earned != expected)
        .order_by(LedgerAccount.id)
        .limit(1)
    )


def check_earned() -> Violation | None:
    """Every wallet's cached ``earned`` is its earns minus reversed earns (others 0)."""
    row = _stale_earned.first()
    if row is None:
        return None
    return Violation(
        "earned",
        f"cached earned {row.earned} but earn - reversed earn is {row.expected}",
        account_id=row.id,
    )


@frozen_violation
def _negative_balance() -> sa.Select[*tuple[Any, ...]]:
    return (
        sa.select(LedgerAccount.id, LedgerAccount.balance)
        .where(LedgerAccount.kind.in_(_member_kinds), LedgerAccount.balance < 0)
        .order_by(LedgerAccount.id)
        .limit(1)
    )


@frozen_violation
def _negative_running_balance() -> sa.Select[*tuple[Any, ...]]:
    running = (
        sa.select(
            LedgerEntry.account_id,
            LedgerEntry.transaction_id,
            sa.func.sum(LedgerEntry.amount)
            .over(
                partition_by=LedgerEntry.account_id,
                order_by=LedgerEntry.transaction_id,
                rows=(None, 0),
            )
            .label("running"),
        )
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.kind.in_(_member_kinds))
        .subquery()
    )
    return (
        sa.select(running.c.account_id, running.c.transaction_id, running.c.running)
        .where(running.c.running < 0)
        .order_by(running.c.transaction_id)
        .limit(1)
    )


def check_nonnegative() -> Violation | None:
    """No member balance is negative, now or after any transaction."""
    row = _negative_balance.first()
    if row is not None:
        return Violation("nonnegative", f"member balance is {row.balance}", account_id=row.id)
    row = _negative_running_balance.first()
    if row is None:
        return None
    return Violation(
        "nonnegative",
        f"member balance went to {row.running} after this transaction",
        transaction_id=row.transaction_id,
        account_id=row.account_id,
    )


@frozen_violation
def _earned_twice() -> sa.Select[*tuple[Any, ...]]:
    t = LedgerTransaction
    return (
        sa.select(
            t.delivery_id,
            t.member_id,
            sa.func.min(t.id).label("first"),
            sa.func.count().label("times"),
        )
        .where(t.kind == TransactionKind.EARN)
        .group_by(t.delivery_id, t.member_id)
        .having(sa.func.count() > 1)
        .order_by(sa.func.min(t.id))
        .limit(1)
    )


def check_earn_once() -> Violation | None:
    """At most one earn per (delivery, member)."""
    row = _earned_twice.first()
    if row is None:
        return None
    return Violation(
        "earn_once",
        f"delivery {row.delivery_id} earned {row.times} times for member {row.member_id}",
        transaction_id=row.first,
    )


@frozen_violation
def _bad_reversal() -> sa.Select[*tuple[Any, ...]]:
    r = aliased(LedgerTransaction)
    o = aliased(LedgerTransaction)
    return (
        sa.select(r.id, o.id.label("oid"), o.kind.label("okind"))
        .outerjoin(o, o.id == r.reverses_id)
        .where(
            r.kind == TransactionKind.REVERSE,
            sa.or_(
                o.id.is_(None),
                o.kind == TransactionKind.REVERSE,
                o.id >= r.id,
                r.member_id.is_distinct_from(o.member_id),
                r.community_id.is_distinct_from(o.community_id),
            ),
        )
        .order_by(r.id)
        .limit(1)
    )


@frozen_violation
def _reversed_twice() -> sa.Select[*tuple[Any, ...]]:
    t = LedgerTransaction
    return (
        sa.select(t.reverses_id, sa.func.min(t.id).label("second"))
        .where(t.reverses_id.is_not(None))
        .group_by(t.reverses_id)
        .having(sa.func.count() > 1)
        .order_by(sa.func.min(t.id))
        .limit(1)
    )


@frozen_violation
def _reversal_not_negation() -> sa.Select[*tuple[Any, ...]]:
    # Reversal entries must be exactly the negated entries of the original.
    t, e = LedgerTransaction, LedgerEntry
    legs = sa.union_all(
        sa.select(t.id.label("rid"), e.account_id, e.amount)
        .join(e, e.transaction_id == t.id)
        .where(t.kind == TransactionKind.REVERSE),
        sa.select(t.id.label("rid"), e.account_id, e.amount)
        .join(e, e.transaction_id == t.reverses_id)
        .where(t.kind == TransactionKind.REVERSE),
    ).subquery()
    return (
        sa.select(legs.c.rid)
        .group_by(legs.c.rid, legs.c.account_id)
        .having(sa.or_(sa.func.sum(legs.c.amount) != 0, sa.func.count() != 2))
        .order_by(legs.c.rid)
        .limit(1)
    )


def check_reversals() -> Violation | None:
    """A reversal negates exactly one earlier, existing non-reversal, at most once."""
    row = _bad_reversal.first()
    if row is not None:
        if row.oid is None:
            detail = "reverses a transaction that does not exist"
        elif row.okind == TransactionKind.REVERSE:
            detail = f"reverses transaction {row.oid}, itself a reversal"
        else:
            detail = f"does not match the transaction {row.oid} it reverses"
        return Violation("reversals", detail, transaction_id=row.id)
    row = _reversed_twice.first()
    if row is not None:
        return Violation(
            "reversals",
            f"transaction {row.reverses_id} is reversed more than once",
            transaction_id=row.second,
        )
    row = _reversal_not_negation.first()
    if row is not None:
        return Violation(
            "reversals",
            "entries are not the exact negation of the reversed transaction",
            transaction_id=row.rid,
        )
    return None
