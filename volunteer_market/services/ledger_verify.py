"""``ledger verify``: every invariant of the points ledger, over the whole ledger.

Read-only. Sums are SQL aggregates; the hash chain is one ordered, streamed pass
(``yield_per``: a server-side cursor on PostgreSQL), so memory stays flat however
long the ledger grows. Each check reports its first violation (lowest id).

Checks, in order:

``balanced``        every transaction has >= 2 entries summing to zero
``global_sum``      all entries sum to zero
``cached_balance``  every account's cached balance = the sum of its entries
``earned``          every wallet's cached ``earned`` = earn - reversed earn
                    (other accounts: 0)
``nonnegative``     no member balance is negative, now or after any transaction
``earn_once``       at most one earn per (delivery, member)
``reversals``       a reversal references an earlier, existing, non-reversal
                    transaction, at most once, with exactly the negated entries
``hash_chain``      every ``prev_hash`` links to the previous transaction and every
                    ``hash`` matches its recomputed content
``head``            the head row points at the last transaction, its hash and count

Later features add their own invariants (reward stock, per-member limits, ranking
rollups) with :func:`register_check`; they run after the built-in ones.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..database import frozen, frozen_violation, probing_violations
from ..extensions import db
from ..models import (
    GENESIS_HASH,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerHead,
    LedgerTransaction,
    TransactionKind,
)
from .ledger import hash_content

STREAM_BATCH = 5000


@dataclass(frozen=True)
class Violation:
    """The first broken invariant found by one check."""

    check: str
    detail: str
    transaction_id: int | None = None
    account_id: int | None = None

    def __str__(self) -> str:
        where = []
        if self.transaction_id is not None:
            where.append(f"transaction {self.transaction_id}")
        if self.account_id is not None:
            where.append(f"account {self.account_id}")
        prefix = f"[{self.check}]" + (f" {', '.join(where)}:" if where else "")
        return f"{prefix} {self.detail}"


Check = Callable[[], Violation | None]
_CHECKS: list[tuple[str, Check]] = []


def register_check(name: str) -> Callable[[Check], Check]:
    """Register ``fn() -> Violation | None`` as a named ledger invariant."""

    def add(fn: Check) -> Check:
        if any(existing == name for existing, _fn in _CHECKS):
            raise RuntimeError(f"duplicate ledger check {name}")
        _CHECKS.append((name, fn))
        return fn

    return add


def check_names() -> list[str]:
    """Return the names of every registered check, in the order they run."""
    return [name for name, _fn in _CHECKS]


#: The ledger's own checks (the ones defined in this module before any feature's).
BUILTIN_CHECKS: tuple[str, ...] = (
    "balanced",
    "global_sum",
    "cached_balance",
    "earned",
    "nonnegative",
    "earn_once",
    "reversals",
    "hash_chain",
    "head",
)


def _selected(checks: Iterable[str] | None) -> list[tuple[str, Check]]:
    if checks is None:
        return list(_CHECKS)
    wanted = set(checks)
    unknown = wanted - {name for name, _fn in _CHECKS}
    if unknown:
        raise LookupError(f"unknown ledger checks: {sorted(unknown)}")
    return [(name, fn) for name, fn in _CHECKS if name in wanted]


def verify(checks: Iterable[str] | None = None) -> Violation | None:
    """Run every check (or only ``checks``) in order; return the first violation, or
    None if all hold."""
    selected = _selected(checks)
    with _probing(checks):
        for _name, fn in selected:
            found = fn()
            if found is not None:
                return found
    return None


def verify_all(checks: Iterable[str] | None = None) -> list[Violation]:
    """Run every check (or only ``checks``); return the first violation of each that fails."""
    selected = _selected(checks)
    with _probing(checks):
        return [v for _name, fn in selected if (v := fn()) is not None]


def _probing(checks: Iterable[str] | None) -> contextlib.AbstractContextManager[None]:
    """The one ``EXISTS`` probe covers the violation queries of *every* check, so it
    pays only when all checks run; a chosen few (``ledger verify --check``) run their
    own queries (at 10M entries the full probe takes most of an hour)."""
    return probing_violations() if checks is None else contextlib.nullcontext()


def stats() -> dict[str, int]:
    """Return counts: transactions, entries, accounts, and the sum of all entries."""
    s = db.session
    return {
        "transactions": s.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction)) or 0,
        "entries": s.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) or 0,
        "accounts": s.scalar(sa.select(sa.func.count()).select_from(LedgerAccount)) or 0,
        "entries_sum": int(
            s.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)))
        ),
    }


_member_kinds = [AccountKind.MEMBER_AVAILABLE, AccountKind.MEMBER_HELD]


@frozen_violation
def _unbalanced() -> sa.Select[Any]:
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


@register_check("balanced")
def _balanced() -> Violation | None:
    row = _unbalanced.first()
    if row is None:
        return None
    return Violation(
        "balanced",
        f"{row.n} entries summing to {row.total} (needs >= 2 summing to 0)",
        transaction_id=row.id,
    )


@frozen
def _entries_total() -> sa.Select[Any]:
    return sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))


@register_check("global_sum")
def _global_sum() -> Violation | None:
    total = int(_entries_total.scalar())
    if total == 0:
        return None
    return Violation("global_sum", f"all entries sum to {total}, not 0")


@frozen_violation
def _stale_balance() -> sa.Select[Any]:
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


@register_check("cached_balance")
def _cached_balance() -> Violation | None:
    row = _stale_balance.first()
    if row is None:
        return None
    return Violation(
        "cached_balance",
        f"cached balance {row.balance} but entries sum to {row.actual}",
        account_id=row.id,
    )


@frozen_violation
def _stale_earned() -> sa.Select[Any]:
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


@register_check("earned")
def _earned() -> Violation | None:
    row = _stale_earned.first()
    if row is None:
        return None
    return Violation(
        "earned",
        f"cached earned {row.earned} but earn - reversed earn is {row.expected}",
        account_id=row.id,
    )


@frozen_violation
def _negative_balance() -> sa.Select[Any]:
    return (
        sa.select(LedgerAccount.id, LedgerAccount.balance)
        .where(LedgerAccount.kind.in_(_member_kinds), LedgerAccount.balance < 0)
        .order_by(LedgerAccount.id)
        .limit(1)
    )


@frozen_violation
def _negative_running_balance() -> sa.Select[Any]:
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


@register_check("nonnegative")
def _nonnegative() -> Violation | None:
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
def _earned_twice() -> sa.Select[Any]:
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


@register_check("earn_once")
def _earn_once() -> Violation | None:
    row = _earned_twice.first()
    if row is None:
        return None
    return Violation(
        "earn_once",
        f"delivery {row.delivery_id} earned {row.times} times for member {row.member_id}",
        transaction_id=row.first,
    )


@frozen_violation
def _bad_reversal() -> sa.Select[Any]:
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
def _reversed_twice() -> sa.Select[Any]:
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
def _reversal_not_negation() -> sa.Select[Any]:
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


@register_check("reversals")
def _reversals() -> Violation | None:
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


def _tx_columns() -> list[Any]:
    t = LedgerTransaction
    return [
        t.id,
        t.kind,
        t.idempotency_key,
        t.member_id,
        t.community_id,
        t.delivery_id,
        t.redemption_id,
        t.reverses_id,
        t.minutes,
        t.policy_id,
        t.actor_id,
        t.reason,
        t.created_at,
        t.prev_hash,
        t.hash,
    ]


def _check_link(tx: Any, entries: list[tuple[int, int]], expected_prev: str, prev_id: int | None):
    if tx.prev_hash != expected_prev:
        where = f"transaction {prev_id}" if prev_id is not None else "the start of the chain"
        return Violation(
            "hash_chain",
            f"broken link: prev_hash does not match the hash of {where}",
            transaction_id=tx.id,
        )
    recomputed = hash_content(
        kind=tx.kind.value if hasattr(tx.kind, "value") else tx.kind,
        idempotency_key=tx.idempotency_key,
        member_id=tx.member_id,
        community_id=tx.community_id,
        delivery_id=tx.delivery_id,
        redemption_id=tx.redemption_id,
        reverses_id=tx.reverses_id,
        minutes=tx.minutes,
        policy_id=tx.policy_id,
        actor_id=tx.actor_id,
        reason=tx.reason,
        created_at=tx.created_at,
        entries=entries,
        prev_hash=tx.prev_hash,
    )
    if recomputed != tx.hash:
        return Violation(
            "hash_chain",
            "broken link: the content no longer matches its hash (altered)",
            transaction_id=tx.id,
        )
    return None


@functools.cache
def _chain_rows() -> sa.Select[Any]:
    t, e = LedgerTransaction, LedgerEntry
    return (
        sa.select(*_tx_columns(), e.account_id.label("e_account"), e.amount.label("e_amount"))
        .outerjoin(e, e.transaction_id == t.id)
        .order_by(t.id, e.id)
    )


@register_check("hash_chain")
def _hash_chain() -> Violation | None:
    db.session.flush()
    conn = db.session.connection()
    expected_prev = GENESIS_HASH
    prev_id: int | None = None
    current: Any = None
    entries: list[tuple[int, int]] = []
    # Streamed (a server-side cursor on PostgreSQL): memory stays flat.
    result = conn.execute(_chain_rows(), execution_options={"yield_per": STREAM_BATCH})
    try:
        for row in result:
            if current is not None and row.id != current.id:
                found = _check_link(current, entries, expected_prev, prev_id)
                if found is not None:
                    return found
                expected_prev, prev_id = current.hash, current.id
                entries = []
            current = row
            if row.e_account is not None:
                entries.append((row.e_account, int(row.e_amount)))
    finally:
        result.close()
    if current is not None:
        return _check_link(current, entries, expected_prev, prev_id)
    return None


@frozen
def _last_transaction() -> sa.Select[Any]:
    return (
        sa.select(LedgerTransaction.id, LedgerTransaction.hash)
        .order_by(LedgerTransaction.id.desc())
        .limit(1)
    )


@frozen
def _transaction_count() -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(LedgerTransaction)


@frozen
def _head_row() -> sa.Select[Any]:
    return sa.select(
        LedgerHead.last_transaction_id, LedgerHead.last_hash, LedgerHead.transaction_count
    )


@register_check("head")
def _head() -> Violation | None:
    last = _last_transaction.first()
    count = _transaction_count.scalar() or 0
    head = _head_row.first()
    if last is None:
        if head is not None and head.last_transaction_id is not None:
            return Violation(
                "head", f"head points at transaction {head.last_transaction_id}, none exist"
            )
        return None
    if head is None:
        return Violation("head", "transactions exist but the head row is missing")
    if head.last_transaction_id != last.id or head.last_hash != last.hash:
        return Violation(
            "head",
            f"head points at transaction {head.last_transaction_id}, the last is {last.id}"
            if head.last_transaction_id != last.id
            else "head hash differs from the last transaction's hash",
            transaction_id=last.id,
        )
    if head.transaction_count != count:
        return Violation(
            "head", f"head counts {head.transaction_count} transactions, there are {count}"
        )
    return None


@register_check("ranking_rollups")
def _ranking_rollups() -> Violation | None:
    """Ranking rollups (member, team, score buckets) equal a fresh recomputation."""
    from . import rankings  # rankings imports the ledger service; import late

    found = rankings.first_mismatch()
    if found is None:
        return None
    return Violation("ranking_rollups", f"{found} (run: flask --app wsgi rankings rebuild)")
