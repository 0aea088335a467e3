"""Stored responses of keyed requests (``Idempotency-Key``); see ``api/idempotency.py``."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa

from ..extensions import db
from ..models import IdempotencyKey, utcnow

#: Keys are kept at least this long (API.md: >= 24 h).
KEY_TTL = timedelta(hours=24)

#: Core statements on the table (no ORM identity map between claim and store).
_keys = cast(sa.Table, IdempotencyKey.__table__)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Return the sha256 hex identifying a request: method, path and canonical body.

    A JSON body is canonicalised (key order and spacing do not matter).
    """
    try:
        canonical = json.dumps(
            json.loads(body or b"null"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    digest.update(method.upper().encode() + b"\n" + path.encode("utf-8") + b"\n")
    digest.update(canonical)
    return digest.hexdigest()


def find(user_id: int, key: str) -> IdempotencyKey | None:
    """Return the stored key of ``user_id``, or None."""
    return db.session.execute(
        sa.select(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def claim(user_id: int, key: str, method: str, path: str, fingerprint: str) -> int:
    """Insert the key row in the current write transaction; return its id.

    :raises sqlalchemy.exc.IntegrityError: the key exists (on PostgreSQL, raised once
        the transaction that inserted it commits).
    """
    return db.session.execute(
        _keys.insert()
        .values(
            user_id=user_id,
            key=key,
            method=method.upper(),
            path=path[:255],
            request_hash=fingerprint,
            created_at=utcnow(),
        )
        .returning(_keys.c.id)
    ).scalar_one()


def store_response(key_id: int, status: int, body: Any) -> None:
    """Record the response of the claimed key (same transaction as the work)."""
    db.session.execute(
        _keys.update()
        .where(_keys.c.id == key_id)
        .values(response_status=status, response_body=body)
    )


def purge_expired(older_than: timedelta = KEY_TTL) -> int:
    """Delete keys older than ``older_than`` (never younger than 24 h); return how many."""
    cutoff = utcnow() - max(older_than, KEY_TTL)
    result = db.session.execute(_keys.delete().where(_keys.c.created_at < cutoff))
    return int(cast("sa.CursorResult[Any]", result).rowcount or 0)
