"""Corrections: reversing a transaction and a secretary's adjustment, each with a reason.

Entries are never updated or deleted. A wrong earn, adjustment or expiry is undone by
:func:`reverse` (its negated legs, at most once); a wallet is corrected by
:func:`adjust` (adjustment account <-> the member's wallet). Both check the policy
(``ledger.reverse`` / ``ledger.adjust``), audit and notify the member.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, LedgerAccount, LedgerTransaction, Role, TransactionKind, User
from ...models.ledger import MAX_ADJUSTMENT, MAX_REASON
from .. import audit, permissions
from ..errors import AlreadyReversed, Conflict, Forbidden, ValidationFailed
from .accounts import account_for_member, adjustment_account
from .head import lock_head
from .posting import REVERSIBLE_KINDS, _post, load_entries, reversal_of
from .reading import member_delta


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed("A reason is required.", errors={"reason": ["Required."]})
    if len(text) > MAX_REASON:
        raise ValidationFailed(
            "The reason is too long.", errors={"reason": [f"At most {MAX_REASON} characters."]}
        )
    return text


def reverse(
    actor: User | None,
    tx: LedgerTransaction,
    reason: str,
    *,
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Post the negated legs of ``tx`` (an earn, adjust or expire) with a reason.

    Audited, and the member is notified. ``actor=None`` is the CLI/system.

    :raises Forbidden: the actor is not the secretary of the transaction's community,
        or the transaction is his own (no self-dealing).
    :raises ValidationFailed: no reason.
    :raises AlreadyReversed: ``tx`` was reversed before (409).
    :raises Conflict: ``tx`` is a reversal, a hold/release/redeem, or has no community.
    :raises InsufficientPoints: the member has spent the points since (409).
    """
    text = _clean_reason(reason)
    community = db.session.get(Area, tx.community_id) if tx.community_id is not None else None
    if actor is not None:
        if community is None:
            raise Forbidden("You are not allowed to do this.", action="ledger.reverse")
        permissions.require(actor, "ledger.reverse", tx)
    if tx.kind == TransactionKind.REVERSE:
        raise Conflict("A reversal cannot itself be reversed.")
    if tx.kind not in REVERSIBLE_KINDS:
        raise Conflict("Holds and redemptions are undone through the redemption, not reversed.")
    lock_head(tx.community_id)  # the reversal joins the chain of the original
    if reversal_of(tx.id) is not None:
        raise AlreadyReversed("This transaction has already been reversed.")
    load_entries(tx)
    accounts = {
        a.id: a
        for a in db.session.execute(
            sa.select(LedgerAccount)
            .where(LedgerAccount.id.in_([e.account_id for e in tx.entries]))
            .execution_options(populate_existing=True)
        ).scalars()
    }
    legs = [(accounts[e.account_id], -e.amount) for e in tx.entries]
    new, created = _post(
        kind=TransactionKind.REVERSE,
        legs=legs,
        idempotency_key=idempotency_key or f"reverse:t{tx.id}",
        actor=actor,
        member_id=tx.member_id,
        community_id=tx.community_id,
        delivery_id=tx.delivery_id,
        redemption_id=tx.redemption_id,
        reverses_id=tx.id,
        minutes=tx.minutes,
        policy_id=tx.policy_id,
        reason=text,
    )
    if created:
        audit.record(
            actor,
            "ledger.reverse",
            "ledger_transaction",
            new.id,
            area_id=tx.community_id,
            detail={"reverses_id": tx.id, "kind": tx.kind.value, "reason": text},
        )
        if new.member_id is not None:
            audit.notify(
                new.member_id,
                "points.reversed",
                object_type="ledger_transaction",
                object_id=new.id,
                params={"amount": member_delta(new), "reason": text, "reverses_id": tx.id},
            )
    return new


@dataclass(frozen=True)
class AdjustTarget:
    """Whose points in which community an adjustment would change (for the policy)."""

    member: User
    community: Area


def member_communities(user: User) -> list[int]:
    """Return the ids of the communities where ``user`` holds a member role, ascending."""
    return sorted(permissions.communities_of(user, [Role.MEMBER]))


def adjustable_community(actor: User | None, user: User) -> Area | None:
    """Return the community in which ``actor`` would adjust ``user``'s points, or None.

    The lowest-id community where the user is a member and the actor is secretary
    (for ``actor=None``, the user's first member community).
    """
    mine = member_communities(user)
    if actor is not None:
        allowed = permissions.communities_of(actor, [Role.SECRETARY])
        mine = [c for c in mine if c in allowed]
    return db.session.get(Area, mine[0]) if mine else None


def adjust(
    actor: User | None,
    user: User,
    amount: int,
    reason: str,
    community: Area | None = None,
    *,
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Add (``amount > 0``) or take (``< 0``) wallet points with a reason.

    Only the secretary of a community where ``user`` is a member (``actor=None``
    is the CLI/demo). Audited, and the member is notified. With an
    ``idempotency_key`` a repeat returns the first transaction.

    :raises ValidationFailed: zero, non-integer or too large amount; no reason.
    :raises Forbidden: the actor is not the secretary of the member's community.
    :raises InsufficientPoints: a negative amount larger than the wallet (409).
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationFailed("The amount must be an integer.", errors={"amount": ["Integer."]})
    if amount == 0 or abs(amount) > MAX_ADJUSTMENT:
        raise ValidationFailed(
            "The amount must be non-zero and at most 100000 either way.",
            errors={"amount": [f"Non-zero, from -{MAX_ADJUSTMENT} to {MAX_ADJUSTMENT}."]},
        )
    text = _clean_reason(reason)
    if community is None:
        community = adjustable_community(actor, user)
        if community is None:
            if actor is not None:
                raise Forbidden("You are not allowed to do this.", action="ledger.adjust")
            raise ValidationFailed(
                "The user is not a member of any community.",
                errors={"user_id": ["Not a member."]},
            )
    if actor is not None:
        permissions.require(actor, "ledger.adjust", AdjustTarget(user, community))
    lock_head(community.id)
    wallet = account_for_member(user.id)
    counter = adjustment_account(community.id)
    legs = [(counter, -amount), (wallet, amount)]
    tx, created = _post(
        kind=TransactionKind.ADJUST,
        legs=legs,
        idempotency_key=idempotency_key or f"adjust:{uuid.uuid4().hex}",
        actor=actor,
        member_id=user.id,
        community_id=community.id,
        delivery_id=None,
        redemption_id=None,
        reverses_id=None,
        minutes=None,
        policy_id=None,
        reason=text,
    )
    if created:
        audit.record(
            actor,
            "ledger.adjust",
            "ledger_transaction",
            tx.id,
            area_id=community.id,
            detail={"user_id": user.id, "amount": amount, "reason": text},
        )
        audit.notify(
            user.id,
            "points.adjusted",
            object_type="ledger_transaction",
            object_id=tx.id,
            params={"amount": amount, "reason": text},
        )
    return tx
