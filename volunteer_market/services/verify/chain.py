"""The hash chains, the heads and the anchors: every link recomputed, every head at
its chain's last transaction, every anchor at the transactions it names.

The chain is one ordered, streamed pass (``yield_per``: a server-side cursor on
PostgreSQL), so memory stays flat however long the ledger grows; each transaction's
hash is recomputed with the ledger's own ``hash_content``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    GENESIS_HASH,
    LedgerAnchor,
    LedgerChainHead,
    LedgerEntry,
    LedgerHead,
    LedgerTransaction,
    chain_genesis,
    chain_key_of,
)
from ..ledger.anchors import anchor_hash
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
        t.chain_key,
        t.prev_hash,
        t.hash,
    ]


def _check_link(
    tx: Any, entries: list[tuple[int, int]], expected_prev: str, prev_id: int | None
) -> Violation | None:
    """The violation of one link (its ``prev_hash`` or its recomputed hash), or None."""
    if tx.chain_key is not None and tx.chain_key != chain_key_of(tx.community_id):
        return Violation(
            "hash_chain",
            f"transaction in chain {tx.chain_key}, its community's chain is"
            f" {chain_key_of(tx.community_id)}",
            transaction_id=tx.id,
        )
    if tx.prev_hash != expected_prev:
        where = f"transaction {prev_id}" if prev_id is not None else "the start of the chain"
        return Violation(
            "hash_chain",
            f"broken link: prev_hash does not match the hash of {where}"
            + (f" (chain {tx.chain_key})" if tx.chain_key is not None else ""),
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
        chain_key=tx.chain_key,
    )
    if recomputed != tx.hash:
        return Violation(
            "hash_chain",
            "broken link: the content no longer matches its hash (altered)",
            transaction_id=tx.id,
        )
    return None


@functools.cache
def _chain_rows(legacy: bool) -> sa.Select[*tuple[Any, ...]]:
    t, e = LedgerTransaction, LedgerEntry
    where = t.chain_key.is_(None) if legacy else t.chain_key.is_not(None)
    return (
        sa.select(*_tx_columns(), e.account_id.label("e_account"), e.amount.label("e_amount"))
        .outerjoin(e, e.transaction_id == t.id)
        .where(where)
        .order_by(t.id, e.id)
    )


def _transactions(legacy: bool) -> Iterator[tuple[Any, list[tuple[int, int]]]]:
    """Stream ``(transaction row, entries)`` of the legacy chain or of all the chains,
    by id (a server-side cursor on PostgreSQL: memory stays flat)."""
    conn = db.session.connection()
    result = conn.execute(_chain_rows(legacy), execution_options={"yield_per": STREAM_BATCH})
    current: Any = None
    entries: list[tuple[int, int]] = []
    try:
        for row in result:
            if current is not None and row.id != current.id:
                yield current, entries
                entries = []
            current = row
            if row.e_account is not None:
                entries.append((row.e_account, int(row.e_amount)))
    finally:
        result.close()
    if current is not None:
        yield current, entries


def legacy_last_hash() -> str:
    """The hash of the legacy chain's last transaction (``GENESIS_HASH`` if none)."""
    last = db.session.execute(
        sa.select(LedgerTransaction.hash)
        .where(LedgerTransaction.chain_key.is_(None))
        .order_by(LedgerTransaction.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return last if last is not None else GENESIS_HASH


def check_hash_chain() -> Violation | None:
    """The legacy chain links from ``GENESIS_HASH``; every community chain links from
    its genesis (derived from the legacy chain's last hash), each transaction to the
    previous one of its chain, in id order; every hash matches its content."""
    db.session.flush()
    expected_prev, prev_id = GENESIS_HASH, None
    for tx, entries in _transactions(legacy=True):
        found = _check_link(tx, entries, expected_prev, prev_id)
        if found is not None:
            return found
        expected_prev, prev_id = tx.hash, tx.id
    legacy_last = expected_prev
    ends: dict[int, tuple[str, int | None]] = {}
    for tx, entries in _transactions(legacy=False):
        prev, last_id = ends.get(tx.chain_key) or (chain_genesis(tx.chain_key, legacy_last), None)
        found = _check_link(tx, entries, prev, last_id)
        if found is not None:
            return found
        ends[tx.chain_key] = (tx.hash, tx.id)
    return None


@frozen
def _last_legacy() -> sa.Select[*tuple[Any, ...]]:
    t = LedgerTransaction
    return sa.select(t.id, t.hash).where(t.chain_key.is_(None)).order_by(t.id.desc()).limit(1)


@frozen
def _legacy_count() -> sa.Select[*tuple[Any, ...]]:
    t = LedgerTransaction
    return sa.select(sa.func.count()).select_from(t).where(t.chain_key.is_(None))


@frozen
def _legacy_head() -> sa.Select[*tuple[Any, ...]]:
    return sa.select(
        LedgerHead.last_transaction_id, LedgerHead.last_hash, LedgerHead.transaction_count
    )


@frozen
def _chain_ends() -> sa.Select[*tuple[Any, ...]]:
    """Per chain: its last transaction's id and hash and its count."""
    t = LedgerTransaction
    last = (
        sa.select(t.chain_key, sa.func.max(t.id).label("last_id"), sa.func.count().label("n"))
        .where(t.chain_key.is_not(None))
        .group_by(t.chain_key)
        .subquery()
    )
    return (
        sa.select(last.c.chain_key, last.c.last_id, last.c.n, t.hash)
        .join(t, t.id == last.c.last_id)
        .order_by(last.c.chain_key)
    )


@frozen
def _chain_heads() -> sa.Select[*tuple[Any, ...]]:
    h = LedgerChainHead
    return sa.select(h.chain_key, h.last_transaction_id, h.last_hash, h.transaction_count).order_by(
        h.chain_key
    )


def _check_legacy_head() -> Violation | None:
    last = _last_legacy.first()
    count = _legacy_count.scalar() or 0
    head = _legacy_head.first()
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


def check_head() -> Violation | None:
    """The legacy head points at the legacy chain's last transaction, its hash and
    count; every chain's head at its chain's last transaction, hash and count (an
    empty chain's head at its genesis); every chain with transactions has a head."""
    found = _check_legacy_head()
    if found is not None:
        return found
    ends = {int(r.chain_key): r for r in _chain_ends.all()}
    heads = {int(r.chain_key): r for r in _chain_heads.all()}
    legacy_last: str | None = None
    for key in sorted(set(ends) | set(heads)):
        end, head = ends.get(key), heads.get(key)
        if head is None:
            return Violation("head", f"chain {key} has transactions but no head row")
        if end is None:
            legacy_last = legacy_last or legacy_last_hash()
            if head.last_transaction_id is not None or int(head.transaction_count) != 0:
                return Violation(
                    "head", f"chain {key}: head points at {head.last_transaction_id}, none exist"
                )
            if head.last_hash != chain_genesis(key, legacy_last):
                return Violation("head", f"chain {key}: empty head is not at its genesis")
            continue
        if head.last_transaction_id != end.last_id or head.last_hash != end.hash:
            return Violation(
                "head",
                f"chain {key}: head points at transaction {head.last_transaction_id},"
                f" the last is {end.last_id}"
                if head.last_transaction_id != end.last_id
                else f"chain {key}: head hash differs from the last transaction's hash",
                transaction_id=int(end.last_id),
            )
        if int(head.transaction_count) != int(end.n):
            return Violation(
                "head",
                f"chain {key}: head counts {head.transaction_count} transactions,"
                f" there are {end.n}",
            )
    return None


def check_anchors() -> Violation | None:
    """The anchor chain links from ``GENESIS_HASH`` and every hash matches; every
    anchored head names an existing transaction of its chain with that hash (an
    empty chain: its genesis), never going back from one anchor to the next; the
    last anchor's counts equal the transactions of each chain up to it; and every
    anchored chain still has a head at or after it. So a chain truncated (or
    rewritten) before its last anchor is detected even if its head row was moved."""
    rows = db.session.execute(
        sa.select(
            LedgerAnchor.id, LedgerAnchor.created_at, LedgerAnchor.heads,
            LedgerAnchor.prev_hash, LedgerAnchor.hash,
        ).order_by(LedgerAnchor.id)
    ).all()  # fmt: skip
    if not rows:
        return None
    expected, seen = GENESIS_HASH, 0
    positions: dict[int, int] = {}
    legacy_last = legacy_last_hash()
    t = LedgerTransaction
    last_heads: list[list[Any]] = []
    for row in rows:
        if row.prev_hash != expected:
            return Violation("anchors", f"anchor {row.id}: prev_hash does not link")
        if anchor_hash(row.created_at, row.heads, row.prev_hash) != row.hash:
            return Violation("anchors", f"anchor {row.id}: content no longer matches its hash")
        expected = row.hash
        last_heads = json.loads(row.heads)
        ids = [int(i) for _k, i, _h, _n in last_heads if i is not None]
        named = {
            int(r.id): r
            for r in db.session.execute(
                sa.select(t.id, t.chain_key, t.hash).where(t.id.in_(ids))
            ).all()
        } if ids else {}  # fmt: skip
        for key, tx_id, digest, _count in last_heads:
            if tx_id is None:
                if digest != chain_genesis(key, legacy_last):
                    return Violation("anchors", f"anchor {row.id}: chain {key} genesis differs")
                continue
            tx = named.get(int(tx_id))
            if tx is None or tx.chain_key != key or tx.hash != digest:
                return Violation(
                    "anchors",
                    f"anchor {row.id}: chain {key} ends at transaction {tx_id}, which is"
                    " missing or altered (chain truncated or rewritten)",
                    transaction_id=int(tx_id),
                )
            if int(tx_id) < positions.get(key, 0):
                return Violation("anchors", f"anchor {row.id}: chain {key} went back")
            positions[key] = int(tx_id)
        seen += 1
    heads = {int(r.chain_key): r for r in _chain_heads.all()}
    for key, tx_id, _digest, count in last_heads:
        n = db.session.execute(
            sa.select(sa.func.count())
            .select_from(t)
            .where(t.chain_key == key, t.id <= (tx_id if tx_id is not None else 0))
        ).scalar_one()
        if int(n) != int(count):
            return Violation(
                "anchors", f"last anchor: chain {key} counted {count} transactions, there are {n}"
            )
        head = heads.get(int(key))
        if head is None or int(head.transaction_count) < int(count):
            return Violation("anchors", f"chain {key}: its head is behind the last anchor")
    return None
