"""Closing a held redemption: fulfil on the pickup code, cancel, reject -- and
:func:`close`, the one way a redemption leaves ``held`` (steps 1-4 of the overview's
transitions; expiry uses it too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    AccountKind,
    Redemption,
    RedemptionStatus,
    Reward,
    StockChangeKind,
    TransactionKind,
    User,
    utcnow,
)
from ...models.rewards import MAX_REASON
from .. import audit, ledger, permissions
from ..errors import Conflict, NotFound, ValidationFailed
from ..rewards import record_stock_change
from .codes import CODE_DIGITS, normalise_code
from .lockout import check_code

_redemptions = cast(sa.Table, Redemption.__table__)
_rewards = cast(sa.Table, Reward.__table__)

_CLOSED_MESSAGES = {
    RedemptionStatus.FULFILLED: "This redemption has already been handed over.",
    RedemptionStatus.CANCELLED: "This redemption has been cancelled.",
    RedemptionStatus.REJECTED: "This redemption has been rejected.",
    RedemptionStatus.EXPIRED: "This redemption has expired.",
}


def _ensure_held(redemption: Redemption) -> None:
    if redemption.status != RedemptionStatus.HELD:
        raise Conflict(_CLOSED_MESSAGES[redemption.status])


def _clean_reason(reason: Any, *, required: bool) -> str | None:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        if required:
            raise ValidationFailed("A reason is required.", errors={"reason": ["Required."]})
        return None
    if len(text) > MAX_REASON:
        raise ValidationFailed(
            "The reason is too long.", errors={"reason": [f"At most {MAX_REASON} characters."]}
        )
    return text


def close(
    actor: User | None,
    redemption: Redemption,
    new_status: RedemptionStatus,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> Redemption:
    """Move a held redemption to ``new_status`` (steps 1-4 of the overview).

    :raises Conflict: it is not held any more, not due (expiry), or closed meanwhile.
    """
    now = now or utcnow()
    # The head of the redemption's community chain (the redeem/release posts there):
    # every transition of one redemption takes it, so they run one after another.
    ledger.lock_head(redemption.community_id)
    db.session.refresh(redemption)
    _ensure_held(redemption)
    if new_status == RedemptionStatus.EXPIRED and redemption.expires_at > now:
        raise Conflict("This redemption has not expired yet.")
    tx_id = _post_final(actor, redemption, new_status, reason)
    _mark_closed(actor, redemption, new_status, tx_id, reason, now)
    if new_status != RedemptionStatus.FULFILLED and redemption.stock_reserved:
        _return_stock(actor, redemption)
    db.session.refresh(redemption)
    db.session.refresh(redemption.reward)
    _announce(actor, redemption, new_status, tx_id, reason)
    return redemption


def _post_final(
    actor: User | None, redemption: Redemption, new_status: RedemptionStatus, reason: str | None
) -> int:
    """Step 2: post the redeem (fulfilled) or release (otherwise); return its id."""
    held = ledger.account_for_member(redemption.member_id, AccountKind.MEMBER_HELD)
    if new_status == RedemptionStatus.FULFILLED:
        kind = TransactionKind.REDEEM
        counter = ledger.sink_account(AccountKind.REDEMPTION_SINK, redemption.community_id)
        key = f"redeem:r{redemption.id}"
    else:
        kind = TransactionKind.RELEASE
        counter = ledger.account_for_member(redemption.member_id, AccountKind.MEMBER_AVAILABLE)
        key = f"release:r{redemption.id}"
    tx = ledger.post_transaction(
        kind=kind,
        legs=[(held, -redemption.total), (counter, redemption.total)],
        idempotency_key=key,
        actor=actor,
        member_id=redemption.member_id,
        community_id=redemption.community_id,
        redemption_id=redemption.id,
        reason=reason,
    )
    return tx.id


def _mark_closed(
    actor: User | None,
    redemption: Redemption,
    new_status: RedemptionStatus,
    tx_id: int,
    reason: str | None,
    now: datetime,
) -> None:
    """Step 3, the arbiter: the conditional UPDATE that only one closer wins."""
    result = db.session.execute(
        _redemptions.update()
        .where(_redemptions.c.id == redemption.id, _redemptions.c.status == RedemptionStatus.HELD)
        .values(
            status=new_status,
            final_transaction_id=tx_id,
            decided_by_id=actor.id if actor is not None else None,
            reason=reason,
            updated_at=now,
        )
    )
    if cast(sa.CursorResult[Any], result).rowcount != 1:
        raise Conflict("This redemption was closed by someone else just now.")


def _return_stock(actor: User | None, redemption: Redemption) -> None:
    """Step 4: give the reserved items back, with a ``return`` stock change."""
    stock_after = db.session.execute(
        _rewards.update()
        .where(_rewards.c.id == redemption.reward_id, _rewards.c.stock.is_not(None))
        .values(stock=_rewards.c.stock + redemption.quantity)
        .returning(_rewards.c.stock)
    ).scalar_one_or_none()
    record_stock_change(
        redemption.reward_id,
        StockChangeKind.RETURN,
        before=None if stock_after is None else stock_after - redemption.quantity,
        after=stock_after,
        delta=redemption.quantity,
        actor=actor,
        redemption_id=redemption.id,
        note=None if stock_after is not None else "reward is now unlimited",
    )


def _announce(
    actor: User | None,
    redemption: Redemption,
    new_status: RedemptionStatus,
    tx_id: int,
    reason: str | None,
) -> None:
    """Audit the change and tell the member."""
    audit.record(
        actor,
        f"redemption.{new_status.value}",
        "redemption",
        redemption.id,
        area_id=redemption.community_id,
        detail={"transaction_id": tx_id, "reason": reason, "total": redemption.total},
    )
    audit.notify(
        redemption.member_id,
        f"redemption.{new_status.value}",
        object_type="redemption",
        object_id=redemption.id,
        params={
            "reward": redemption.reward.name,
            "quantity": redemption.quantity,
            "total": redemption.total,
            "reason": reason,
        },
    )


def _visible(actor: User, redemption: Redemption) -> None:
    if not permissions.may(actor, "redemption.view", redemption):
        raise NotFound("Redemption not found.")


def fulfil(
    actor: User, redemption: Redemption, code: Any, *, now: datetime | None = None
) -> Redemption:
    """Hand the reward over on its pickup code (the community's secretary): the held
    points go to the community's redemption sink.

    :raises NotFound: the actor may not see the redemption.
    :raises Forbidden: the actor is not its community's secretary (or is its member).
    :raises Conflict: it is not held any more (409).
    :raises ValidationFailed: the pickup code is malformed or wrong (422; a wrong one
        is counted and audited, see :mod:`.lockout`).
    :raises TooManyAttempts: too many wrong codes for this redemption or by this
        actor: refused, even the right code, until the lock-out ends (429).
    """
    _visible(actor, redemption)
    permissions.require(actor, "redemption.handle", redemption)
    _ensure_held(redemption)
    normal = normalise_code(code)
    if normal is None:
        raise ValidationFailed(
            "The pickup code has eight digits.",
            errors={"pickup_code": [f"{CODE_DIGITS} digits."]},
        )
    # Lock order: the chain head first (close() takes it again), then the user's lock
    # and the redemption row of check_code.
    ledger.lock_head(redemption.community_id)
    check_code(actor, redemption, normal, now or utcnow())  # counted, locked out (lockout.py)
    return close(actor, redemption, RedemptionStatus.FULFILLED, now=now)


def cancel(
    actor: User, redemption: Redemption, reason: Any = None, *, now: datetime | None = None
) -> Redemption:
    """Cancel a held redemption (its member or the community's secretary): points and
    stock return.

    :raises NotFound: the actor may not see the redemption.
    :raises Forbidden: neither its member nor the community's secretary.
    :raises Conflict: it is not held any more (409).
    """
    _visible(actor, redemption)
    permissions.require(actor, "redemption.cancel", redemption)
    text = _clean_reason(reason, required=False)
    _ensure_held(redemption)
    return close(actor, redemption, RedemptionStatus.CANCELLED, reason=text, now=now)


def reject(
    actor: User, redemption: Redemption, reason: Any, *, now: datetime | None = None
) -> Redemption:
    """Refuse a held redemption with a reason (the community's secretary): points and
    stock return.

    :raises NotFound: the actor may not see the redemption.
    :raises Forbidden: not the community's secretary (or its own member).
    :raises ValidationFailed: no reason.
    :raises Conflict: it is not held any more (409).
    """
    _visible(actor, redemption)
    permissions.require(actor, "redemption.handle", redemption)
    text = _clean_reason(reason, required=True)
    _ensure_held(redemption)
    return close(actor, redemption, RedemptionStatus.REJECTED, reason=text, now=now)
