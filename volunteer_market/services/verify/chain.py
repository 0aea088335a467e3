"""The hash chain and the head: every link recomputed, the head at the last transaction.

The chain is one ordered, streamed pass (``yield_per``: a server-side cursor on
PostgreSQL), so memory stays flat however long the ledger grows; each transaction's
hash is recomputed with the ledger's own ``hash_content``.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import GENESIS_HASH, LedgerEntry, LedgerHead, LedgerTransaction
from ..ledger.hashing import hash_content
from .frozen import frozen
from .registry import Violation

#: Rows fetched at a time by the streamed chain pass.
STREAM_BATCH = 5000


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


def _check_link(
    tx: Any, entries: list[tuple[int, int]], expected_prev: str, prev_id: int | None
) -> Violation | None:
    """The violation of one link (its ``prev_hash`` or its recomputed hash), or None."""
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
def _chain_rows() -> sa.Select[*tuple[Any, ...]]:
    t, e = LedgerTransaction, LedgerEntry
    return (
        sa.select(*_tx_columns(), e.account_id.label("e_account"), e.amount.label("e_amount"))
        .outerjoin(e, e.transaction_id == t.id)
        .order_by(t.id, e.id)
    )


def check_hash_chain() -> Violation | None:
    """Every ``prev_hash`` links to the previous transaction; every hash matches."""
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
def _last_transaction() -> sa.Select[*tuple[Any, ...]]:
    return (
        sa.select(LedgerTransaction.id, LedgerTransaction.hash)
        .order_by(LedgerTransaction.id.desc())
        .limit(1)
    )


@frozen
def _transaction_count() -> sa.Select[*tuple[Any, ...]]:
    return sa.select(sa.func.count()).select_from(LedgerTransaction)


@frozen
def _head_row() -> sa.Select[*tuple[Any, ...]]:
    return sa.select(
        LedgerHead.last_transaction_id, LedgerHead.last_hash, LedgerHead.transaction_count
    )


def check_head() -> Violation | None:
    """The head row points at the last transaction, its hash and the count."""
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
