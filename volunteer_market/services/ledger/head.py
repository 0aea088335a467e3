"""The chain heads: one posting lock and one hash-chain end per community.

``ledger_chain_heads`` has one row per chain (``chain_key`` = the transaction's
community, :data:`DISTRICT_CHAIN` 0 for a transaction without one) holding that
chain's last transaction id and hash. A posting locks the head of its own chain
(:func:`lock_head`, the first step of the lock order), so each chain stays linear
while postings of different communities run side by side; :func:`advance_head` moves
it to the transaction just inserted.

A chain's head row is created on its first posting, its ``last_hash`` the chain's
genesis (``models.ledger.chain_genesis`` of the legacy chain's last hash: the frozen
``ledger_head`` row, ``GENESIS_HASH`` on a database that never had one). Creating a
head takes the *registry lock* shared (:func:`mutex`-style named lock,
``pg_advisory_xact_lock_shared``); :func:`lock_all_heads` (whole-ledger operations:
rankings rebuild, eligibility refresh) takes it exclusive before every head in
ascending order, so no chain -- not even a new one -- can post while they run.

:func:`mutex` is a transaction-scoped named lock (``pg_advisory_xact_lock``; a
no-op on SQLite, whose ``BEGIN IMMEDIATE`` serialises writers anyway) for the
guarantees that used to ride on the single head (pickup-code tries per user).

This module imports nothing of the ledger or rankings packages, so both can take the
head locks without an import cycle.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ...database import writing
from ...extensions import db
from ...models import GENESIS_HASH, LedgerChainHead, LedgerHead, chain_genesis, chain_key_of, utcnow

_head = cast(sa.Table, LedgerChainHead.__table__)
_legacy = cast(sa.Table, LedgerHead.__table__)

#: ``session.info`` key: ``{chain_key: (transaction, last id, last hash)}`` of the heads
#: as locked and read (or last written) in that transaction. A repeated
#: :func:`lock_head` in the same innermost (sub)transaction returns it without another
#: ``SELECT .. FOR UPDATE``; in any other (sub)transaction -- a savepoint opened or
#: ended since, a new transaction -- the head is read again, so a rolled-back savepoint
#: can never leave a stale hash.
_HEAD_HELD = "ledger.heads_held"


def require_write() -> None:
    """Refuse a ledger write outside ``database.atomic()`` (a programming error)."""
    if not writing():
        raise RuntimeError("ledger writes must run inside database.atomic()")


def dialect_insert(model: Any) -> postgresql.Insert | sqlite.Insert:
    """Return a dialect INSERT for ``model`` that supports ``on_conflict_do_nothing``."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


_LOCK_HEAD = (
    sa.select(_head.c.last_transaction_id, _head.c.last_hash)
    .where(_head.c.chain_key == sa.bindparam("chain_key"))
    .with_for_update()
)


def lock_head(community_id: int | None) -> tuple[int | None, str]:
    """Lock the head of ``community_id``'s chain (creating it once); return
    ``(last id, last hash)``.

    The first lock every posting takes (see "Lock order" in the package overview). A
    transaction that needs several heads takes them in ascending chain key order.
    Idempotent within a transaction.
    """
    require_write()
    key = chain_key_of(community_id)
    txn = _current_transaction()
    held = db.session.info.get(_HEAD_HELD, {}).get(key)
    if held is not None and txn is not None and held[0] is txn:
        return held[1], held[2]  # already locked (and read) in this very (sub)transaction
    row = db.session.execute(_LOCK_HEAD, {"chain_key": key}).one_or_none()
    if row is None:
        _create_head(key)
        row = db.session.execute(_LOCK_HEAD, {"chain_key": key}).one()
    remember_head(key, row.last_transaction_id, row.last_hash)
    return row.last_transaction_id, row.last_hash


_REGISTRY = "ledger-chain-registry"


def _registry_lock(*, exclusive: bool) -> None:
    """The named lock over the set of chains (nothing on SQLite: one writer at a time)."""
    if _is_postgres():
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        db.session.execute(
            sa.text(f"SELECT {fn}(:ns, 0)"),  # noqa: S608 - one of two constant names
            {"ns": _namespace(_REGISTRY)},
        )


def legacy_last_hash() -> str:
    """The end of the legacy chain (frozen): ``ledger_head.last_hash`` or GENESIS."""
    found = db.session.execute(
        sa.select(_legacy.c.last_hash).where(_legacy.c.id == 1)
    ).scalar_one_or_none()
    return found if found is not None else GENESIS_HASH


def _create_head(key: int) -> None:
    """Create chain ``key``'s head at its genesis (under the registry lock, shared)."""
    _registry_lock(exclusive=False)
    db.session.execute(
        dialect_insert(LedgerChainHead)
        .values(
            chain_key=key,
            last_transaction_id=None,
            last_hash=chain_genesis(key, legacy_last_hash()),
            transaction_count=0,
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["chain_key"])
    )


def lock_heads(community_ids: Iterable[int | None]) -> None:
    """Lock the heads of several communities' chains, in ascending chain key order.

    With more than one head, the registry lock (shared) comes first: a head this
    transaction has to create takes it, and taken only then -- with a head already held
    -- it could wait on a :func:`lock_all_heads` that holds the registry exclusively and
    waits on that head (a deadlock; ``tests/ledger/test_chains.py``). Registry before
    heads is the order :func:`lock_all_heads` keeps too.
    """
    keys = sorted({chain_key_of(c) for c in community_ids})
    if len(keys) > 1:
        require_write()
        _registry_lock(exclusive=False)
    for key in keys:
        lock_head(key if key else None)


def lock_all_heads() -> None:
    """Lock the registry (exclusive) and then every chain head, ascending.

    For whole-ledger operations (rankings rebuild, eligibility refresh): no posting of
    any chain runs while they hold it, and no new chain can start. Must be the first
    ledger lock of its transaction.
    """
    require_write()
    _registry_lock(exclusive=True)
    db.session.execute(
        sa.select(_head.c.chain_key).order_by(_head.c.chain_key).with_for_update()
    ).all()
    db.session.info.pop(_HEAD_HELD, None)  # read again on the next lock_head


def _current_transaction() -> Any:
    session = db.session()
    return session.get_nested_transaction() or session.get_transaction()


def remember_head(key: int, last_id: int | None, last_hash: str) -> None:
    """Note chain ``key``'s head as locked and read (or written) in the current
    (sub)transaction."""
    txn = _current_transaction()
    held = db.session.info.setdefault(_HEAD_HELD, {})
    if txn is None:
        held.pop(key, None)
    else:
        held[key] = (txn, last_id, last_hash)


#: The head's write statement, built once with bound parameters (compiled once, then
#: served from SQLAlchemy's statement cache).
_ADVANCE_HEAD = (
    _head.update()
    .where(_head.c.chain_key == sa.bindparam("b_chain_key"))
    .values(
        last_transaction_id=sa.bindparam("tx_id"),
        last_hash=sa.bindparam("digest"),
        transaction_count=_head.c.transaction_count + 1,
        updated_at=sa.bindparam("at", type_=_head.c.updated_at.type),
    )
)


def advance_head(key: int, tx_id: int, digest: str, at: datetime) -> None:
    """Point chain ``key``'s (locked) head at the transaction just inserted; count it."""
    db.session.execute(
        _ADVANCE_HEAD, {"b_chain_key": key, "tx_id": tx_id, "digest": digest, "at": at}
    )


def mutex(name: str, key: int) -> None:
    """Hold the named lock ``(name, key)`` until the end of the transaction.

    ``pg_advisory_xact_lock`` on PostgreSQL; nothing on SQLite (``BEGIN IMMEDIATE``
    already serialises every writer). Taken after the heads (lock order).
    """
    require_write()
    if _is_postgres():
        db.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, :key)"),
            {"ns": _namespace(name), "key": int(key)},
        )


def _namespace(name: str) -> int:
    """The first key of a named lock (a stable 31-bit number of its name)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF
