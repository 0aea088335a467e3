"""The ledger head: the posting lock and the end of the hash chain.

``ledger_head`` is one row (``id = 1``) holding the last transaction's id and hash.
Every posting locks it first (:func:`lock_head`, the first step of the lock order),
so postings are serialized and the hash chain stays linear; :func:`advance_head`
moves it to the transaction just inserted.

This module imports nothing of the ledger or rankings packages, so both can take the
head lock (rankings does, before it rewrites rollups) without an import cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ...database import writing
from ...extensions import db
from ...models import GENESIS_HASH, LedgerHead, utcnow

_head = cast(sa.Table, LedgerHead.__table__)

#: ``session.info`` key: ``(transaction, last id, last hash)`` of the head as locked and
#: read (or last written) in that transaction. A repeated :func:`lock_head` in the same
#: innermost (sub)transaction returns it without another ``SELECT .. FOR UPDATE``; in
#: any other (sub)transaction -- a savepoint opened or ended since, a new transaction --
#: the head is read again, so a rolled-back savepoint can never leave a stale hash.
_HEAD_HELD = "ledger.head_held"


def require_write() -> None:
    """Refuse a ledger write outside ``database.atomic()`` (a programming error)."""
    if not writing():
        raise RuntimeError("ledger writes must run inside database.atomic()")


def dialect_insert(model: Any) -> postgresql.Insert | sqlite.Insert:
    """Return a dialect INSERT for ``model`` that supports ``on_conflict_do_nothing``."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def lock_head() -> tuple[int | None, str]:
    """Lock the ledger head row (creating it once) and return ``(last id, last hash)``.

    The first lock every posting takes (see "Lock order" in the package overview).
    Idempotent within a transaction.
    """
    require_write()
    txn = _current_transaction()
    held = db.session.info.get(_HEAD_HELD)
    if held is not None and txn is not None and held[0] is txn:
        return held[1], held[2]  # already locked (and read) in this very (sub)transaction
    stmt = (
        sa.select(_head.c.last_transaction_id, _head.c.last_hash)
        .where(_head.c.id == 1)
        .with_for_update()
    )
    row = db.session.execute(stmt).one_or_none()
    if row is None:
        db.session.execute(
            dialect_insert(LedgerHead)
            .values(id=1, last_hash=GENESIS_HASH, transaction_count=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = db.session.execute(stmt).one()
    remember_head(row.last_transaction_id, row.last_hash)
    return row.last_transaction_id, row.last_hash


def _current_transaction() -> Any:
    session = db.session()
    return session.get_nested_transaction() or session.get_transaction()


def remember_head(last_id: int | None, last_hash: str) -> None:
    """Note the head as locked and read (or written) in the current (sub)transaction."""
    txn = _current_transaction()
    if txn is None:
        db.session.info.pop(_HEAD_HELD, None)
    else:
        db.session.info[_HEAD_HELD] = (txn, last_id, last_hash)


#: The head's write statement, built once with bound parameters (compiled once, then
#: served from SQLAlchemy's statement cache).
_ADVANCE_HEAD = (
    _head.update()
    .where(_head.c.id == 1)
    .values(
        last_transaction_id=sa.bindparam("tx_id"),
        last_hash=sa.bindparam("digest"),
        transaction_count=_head.c.transaction_count + 1,
        updated_at=sa.bindparam("at", type_=_head.c.updated_at.type),
    )
)


def advance_head(tx_id: int, digest: str, at: datetime) -> None:
    """Point the (locked) head at the transaction just inserted and count it."""
    db.session.execute(_ADVANCE_HEAD, {"tx_id": tx_id, "digest": digest, "at": at})
