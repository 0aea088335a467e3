"""``Idempotency-Key`` for every point-moving POST: a retry replays the first response.

Put :func:`idempotent` between ``@blp.route`` and ``@blp.arguments``::

    @blp.route("/adjustments", methods=["POST"])
    @idempotent
    @blp.arguments(AdjustmentIn)
    @blp.response(201, TransactionOut)
    def create_adjustment(data): ...

Without the header the view runs as usual. With it, one write transaction
(``atomic()``; the view's own ``atomic()`` joins it):

1. insert the key row ``(user, key, method, path, sha256 of the canonical body)``;
2. run the view; 3. store its status and JSON body; 4. commit.

Later, the same user + key + request gets the stored response again (same status
and body, plus ``Idempotent-Replayed: true``); the same key with a different
request -> 422. Concurrent duplicates: the key row comes first in the
transaction, so on PostgreSQL a duplicate's INSERT waits for the first
transaction and then fails on the UNIQUE constraint (on SQLite ``BEGIN IMMEDIATE``
serializes them); the loser rolls back everything and replays the stored
response. A view that raises (4xx) rolls the key back with its work, so a retry
runs again. Keys are kept at least 24 hours (``services.idempotency.purge_expired``).

The view can read the key with :func:`current_key` (e.g. to derive the ledger's own
idempotency key, so the posting stays idempotent even after the key row is purged).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError

from ..database import atomic
from ..extensions import db
from ..services import idempotency as store
from ..services.errors import Conflict, ValidationFailed
from .common import actor

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")

#: OpenAPI description of the header, for ``@blp.doc(parameters=[IDEMPOTENCY_PARAMETER])``.
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Retries with the same key and body replay the first response; "
    "the same key with another body is refused (422). Kept at least 24 hours.",
}


class _KeyTaken(Exception):
    """The key row already exists (raised inside the transaction to roll it back)."""


def current_key() -> str | None:
    """Return this request's validated Idempotency-Key, or None."""
    return g.get("idempotency_key")


def _replay(row: Any, fingerprint: str) -> Any:
    if row.request_hash != fingerprint:
        raise ValidationFailed(
            "This Idempotency-Key was already used with a different request.",
            errors={HEADER: ["Already used with a different request."]},
        )
    if row.response_status is None:
        raise Conflict("A request with this Idempotency-Key is still in progress.")
    resp = jsonify(row.response_body)
    resp.status_code = row.response_status
    resp.headers[REPLAY_HEADER] = "true"
    return resp


def idempotent(view: F) -> F:
    """Make a POST view replay its first response for a repeated Idempotency-Key."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not _KEY_RE.match(key):
            raise ValidationFailed(
                "Invalid Idempotency-Key.",
                errors={HEADER: ["1 to 255 visible ASCII characters."]},
            )
        user = actor()
        path = request.path
        fingerprint = store.request_fingerprint(request.method, path, request.get_data())
        existing = store.find(user.id, key)
        if existing is not None:
            return _replay(existing, fingerprint)
        g.idempotency_key = key
        try:
            with atomic():
                try:
                    key_id = store.claim(user.id, key, request.method, path, fingerprint)
                except IntegrityError as exc:
                    raise _KeyTaken from exc
                resp = current_app.make_response(view(*args, **kwargs))
                store.store_response(key_id, resp.status_code, resp.get_json(silent=True))
        except _KeyTaken:
            db.session.rollback()
            existing = store.find(user.id, key)
            if existing is None:  # the first request failed and rolled back meanwhile
                raise Conflict("A request with this Idempotency-Key failed; retry.") from None
            return _replay(existing, fingerprint)
        return resp

    return wrapper  # type: ignore[return-value]
