"""/api/v1/users/{id}/ledger, /api/v1/adjustments, /api/v1/transactions/{id}/reverse."""

from __future__ import annotations

import hashlib
from typing import Any

from ..database import atomic
from ..schemas.ledger import AdjustmentIn, LedgerOut, LedgerQuery, ReverseIn, TransactionOut
from ..services import ledger as ledger_service
from ..services import users as user_service
from ..services.errors import NotFound, ValidationFailed
from .common import actor, make_blueprint
from .idempotency import IDEMPOTENCY_PARAMETER, current_key, idempotent

blp = make_blueprint("api_ledger", "", "Points ledger: balances, adjustments, reversals")


def _ledger_key(kind: str) -> str | None:
    """Derive the ledger transaction's key from the request's Idempotency-Key, if any."""
    key = current_key()
    if key is None:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{kind}:api:u{actor().id}:{digest}"


@blp.route("/users/<int:user_id>/ledger", methods=["GET"])
@blp.arguments(LedgerQuery, location="query")
@blp.response(200, LedgerOut)
def member_ledger(args: dict, user_id: int) -> dict[str, Any]:
    """Return a member's balances and transactions with entries, newest first
    (the member, the secretary of their community, an officer over it)."""
    user = user_service.get_visible_user(actor(), user_id, "ledger.view")
    page = ledger_service.history(user, args["page"], args["per_page"])
    return {"balances": ledger_service.balances(user), **page}


@blp.route("/adjustments", methods=["POST"])
@idempotent
@blp.arguments(AdjustmentIn)
@blp.response(201, TransactionOut)
@blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
def create_adjustment(data: dict) -> dict[str, Any]:
    """Add or take a member's wallet points with a required reason (the secretary of the
    member's community). A negative amount larger than the wallet is refused (409)."""
    try:
        user = user_service.get_user(data["user_id"])
    except NotFound:
        raise ValidationFailed("Unknown user.", errors={"user_id": ["Unknown user."]}) from None
    with atomic():
        tx = ledger_service.adjust(
            actor(),
            user,
            data["amount"],
            data["reason"],
            idempotency_key=_ledger_key("adjust"),
        )
        return ledger_service.present_transactions([tx])[0]


@blp.route("/transactions/<int:tx_id>/reverse", methods=["POST"])
@idempotent
@blp.arguments(ReverseIn)
@blp.response(201, TransactionOut)
@blp.doc(parameters=[IDEMPOTENCY_PARAMETER])
def reverse_transaction(data: dict, tx_id: int) -> dict[str, Any]:
    """Reverse an earn, adjustment or expiry with a reason (the secretary of its
    community). A second reversal, or one the member can no longer cover, is 409."""
    user = actor()
    tx = ledger_service.get_transaction(tx_id)
    if tx.member_id is None:
        raise NotFound("Transaction not found.")
    try:
        user_service.get_visible_user(user, tx.member_id, "ledger.view")
    except NotFound:
        raise NotFound("Transaction not found.") from None
    with atomic():
        new = ledger_service.reverse(user, tx, data["reason"])
        return ledger_service.present_transactions([new])[0]
