"""Anchors: a linear chain of snapshots of every chain head (``ledger_anchors``).

Each anchor records every chain head as ``[chain_key, last_transaction_id,
last_hash, transaction_count]`` (sorted by chain key) and is itself linked:
``hash`` = sha256 over the canonical JSON of its time, its heads and ``prev_hash``
(the previous anchor's hash, ``GENESIS_HASH`` for the first). ``ledger verify``
checks the anchor chain link by link and every anchored head against the
transactions it names (``services/verify/chain.py``).

What an anchor adds. The per-community chains are independent, so a chain's end is
witnessed only by its head row -- which a writer with database access can rewrite
together with a truncated tail. An anchor pins every chain's end at its time in a
second, linear chain: removing or rewriting anything before the last anchor breaks
the anchored hash (and the anchor chain cannot be re-forged below an anchor copied
out of the database). Export the last anchor's hash (e.g. log it, mail it, print it
in the annual report) and the whole district's ledger up to it is fixed.

Written by ``flask --app wsgi ledger anchor`` (cron, e.g. every 5 minutes): it takes
no head lock -- the heads are read as committed, in one statement -- only a named
lock of its own, so the anchor chain stays linear when two run at once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import GENESIS_HASH, LedgerAnchor, LedgerChainHead, utcnow
from .head import mutex, require_write

_ANCHOR_LOCK = "ledger-anchor"


def heads_json(heads: list[list[Any]]) -> str:
    """The canonical JSON of anchored heads (sorted by chain key)."""
    rows = sorted([int(k), None if i is None else int(i), str(h), int(n)] for k, i, h, n in heads)
    return json.dumps(rows, separators=(",", ":"))


def anchor_hash(created_at: datetime, heads: str, prev_hash: str) -> str:
    """The hash of an anchor (its time, its canonical heads JSON and ``prev_hash``)."""
    doc = {
        "v": 1,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "heads": json.loads(heads),
        "prev_hash": prev_hash,
    }
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def write_anchor() -> LedgerAnchor:
    """Append an anchor of every chain head as committed now (inside ``atomic()``)."""
    require_write()
    mutex(_ANCHOR_LOCK, 0)
    last = db.session.execute(
        sa.select(LedgerAnchor.hash).order_by(LedgerAnchor.id.desc()).limit(1)
    ).scalar_one_or_none()
    h = LedgerChainHead
    heads = [
        list(row)
        for row in db.session.execute(
            sa.select(h.chain_key, h.last_transaction_id, h.last_hash, h.transaction_count)
        ).all()
    ]
    text = heads_json(heads)
    now = utcnow()
    prev = last if last is not None else GENESIS_HASH
    anchor = LedgerAnchor(
        created_at=now, heads=text, prev_hash=prev, hash=anchor_hash(now, text, prev)
    )
    db.session.add(anchor)
    db.session.flush()
    return anchor
