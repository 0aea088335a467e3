"""Tamper evidence: the hash of a transaction over its content and the previous hash.

``hash`` = sha256 over the canonical JSON (sorted keys, compact, UTF-8) of a
transaction's kind, key, references, actor, reason, time, sorted ``[account_id,
amount]`` entries and ``prev_hash``. Posting stores it; ``ledger verify``
(``services/verify/chain.py``) recomputes it for every transaction.

Version 1 (``"v": 1``) is the legacy single chain (``chain_key`` NULL). Version 2
(``"v": 2``) adds ``"chain"``, the transaction's chain key, so a transaction cannot
be moved to another community's chain without breaking its hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def hash_content(
    *,
    kind: str,
    idempotency_key: str,
    member_id: int | None,
    community_id: int | None,
    delivery_id: int | None,
    redemption_id: int | None,
    reverses_id: int | None,
    minutes: int | None,
    policy_id: int | None,
    actor_id: int | None,
    reason: str | None,
    created_at: datetime,
    entries: Sequence[tuple[int, int]],
    prev_hash: str,
    chain_key: int | None = None,
) -> str:
    """Return the sha256 hex of a transaction's canonical JSON (content + prev_hash)."""
    doc: dict[str, object] = {
        "v": 1 if chain_key is None else 2,
        "kind": str(kind),
        "idempotency_key": idempotency_key,
        "member_id": member_id,
        "community_id": community_id,
        "delivery_id": delivery_id,
        "redemption_id": redemption_id,
        "reverses_id": reverses_id,
        "minutes": minutes,
        "policy_id": policy_id,
        "actor_id": actor_id,
        "reason": reason,
        "created_at": _iso(created_at),
        "entries": sorted([int(a), int(m)] for a, m in entries),
        "prev_hash": prev_hash,
    }
    if chain_key is not None:
        doc["chain"] = int(chain_key)
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
