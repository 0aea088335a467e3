"""Requesting a redemption: hold the points, reserve the stock, check the per-member limit
and issue a pickup code, all or nothing.

:func:`request` is the sequence of the package overview's steps 1-7; each step is a
function below, called in that order, under the locks the overview names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ...database import writing
from ...extensions import db
from ...models import (
    AccountKind,
    LedgerTransaction,
    Redemption,
    RedemptionStatus,
    Reward,
    StockChangeKind,
    TransactionKind,
    User,
    utcnow,
)
from ...models.rewards import MAX_QUANTITY
from .. import audit, ledger, permissions, points_policy
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..rewards import closed_reason, record_stock_change
from .codes import new_code, pickup_code
from .periods import PERIOD_LABELS, community_zone, period_key
from .reading import redemption_community, used_in_period

_rewards = cast(sa.Table, Reward.__table__)


class OutOfStock(Conflict):
    """Not enough stock left for the quantity asked (409)."""


class LimitReached(Conflict):
    """The per-member limit of the period would be exceeded (409)."""


@dataclass(frozen=True)
class Issued:
    """A redemption made (or replayed) by :func:`request`, with its pickup code."""

    redemption: Redemption
    pickup_code: str
    replayed: bool = False


def _check_quantity(quantity: Any) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationFailed(
            "The quantity must be a whole number.", errors={"quantity": ["A whole number."]}
        )
    if not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(
            f"The quantity must be from 1 to {MAX_QUANTITY}.",
            errors={"quantity": [f"From 1 to {MAX_QUANTITY}."]},
        )
    return quantity


def next_redemption_id() -> int:
    """Allocate the id of the redemption about to be made (inside ``atomic()``).

    PostgreSQL: the column's sequence. SQLite: ``max(id) + 1``, safe because
    ``BEGIN IMMEDIATE`` gives this transaction the only write lock.
    """
    if not writing():
        raise RuntimeError("next_redemption_id() must run inside atomic()")
    if db.session.get_bind().dialect.name == "postgresql":
        return int(
            db.session.execute(
                sa.text("SELECT nextval(pg_get_serial_sequence('redemptions', 'id'))")
            ).scalar_one()
        )
    return int(
        db.session.execute(
            sa.select(sa.func.coalesce(sa.func.max(Redemption.id), 0) + 1)
        ).scalar_one()
    )


def request_key(member_id: int, client_key: str) -> str:
    """Return the stored idempotency key of a member's keyed request."""
    return f"u{member_id}:{hashlib.sha256(client_key.encode()).hexdigest()}"


def request(
    actor: User,
    reward: Reward,
    quantity: Any,
    *,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Issued:
    """Redeem ``quantity`` items of ``reward``: hold the points, reserve the stock, check
    the per-member limit and issue a pickup code -- all or nothing (see the overview).

    ``idempotency_key`` (the client's key): a repeat returns the first redemption.

    :raises NotFound: the reward is not visible to the actor.
    :raises Forbidden: the actor is not a member in the reward's scope.
    :raises ValidationFailed: the quantity is not a whole number from 1 to 100.
    :raises Conflict: the reward is closed, or the key was used for another request.
    :raises InsufficientPoints: the wallet is short (409).
    :raises OutOfStock: not enough stock left (409).
    :raises LimitReached: the per-member limit of the period would be exceeded (409).
    """
    now = now or utcnow()
    quantity, community_id = _check_request(actor, reward, quantity)
    key = request_key(actor.id, idempotency_key) if idempotency_key else None

    # The head of the community's chain (the hold posts there). The stock is a
    # conditional UPDATE of the reward row (atomic, and its row lock held to the end);
    # the per-member limit counts the member's redemptions while the hold's balance
    # UPDATE holds the member's wallet row, so two requests of one member -- even in
    # two communities -- are counted one after another.
    ledger.lock_head(community_id)
    if key is not None:
        replayed = _replay(key, reward, quantity)
        if replayed is not None:
            return replayed
    _ensure_open(reward, now)

    total = reward.cost * quantity
    redemption_id = next_redemption_id()
    hold = _hold_points(actor, total, community_id, redemption_id)
    stock_after = _reserve_stock(reward, quantity)
    zone = community_zone(community_id)
    limit = _check_limit(actor, reward, quantity, now, zone)
    redemption, code = _insert_redemption(
        actor,
        reward,
        redemption_id=redemption_id,
        community_id=community_id,
        quantity=quantity,
        total=total,
        stock_after=stock_after,
        limit=limit,
        zone=zone,
        hold=hold,
        key=key,
        now=now,
    )
    if stock_after is not None:
        _record_reserve(actor, reward, redemption, stock_after)
    _announce(actor, reward, redemption)
    return Issued(redemption, code)


def _check_request(actor: User, reward: Reward, quantity: Any) -> tuple[int, int]:
    """Step 1: the read-only checks; return the quantity and the member's community."""
    if not permissions.may(actor, "reward.view", reward):
        raise NotFound("Reward not found.")
    permissions.require(actor, "reward.redeem", reward)
    quantity = _check_quantity(quantity)
    community_id = redemption_community(actor, reward)
    if community_id is None:  # pragma: no cover - reward.redeem implies a community
        raise Forbidden("You are not allowed to do this.", action="reward.redeem")
    return quantity, community_id


def _replay(key: str, reward: Reward, quantity: int) -> Issued | None:
    """Step 2, after the head lock: the redemption already made with this key, if any."""
    existing = db.session.execute(
        sa.select(Redemption).where(Redemption.idempotency_key == key)
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.reward_id != reward.id or existing.quantity != quantity:
        raise Conflict("This idempotency key was already used for another request.")
    return Issued(existing, pickup_code(existing), replayed=True)


def _ensure_open(reward: Reward, now: datetime) -> None:
    """Re-read the reward under the head lock; refuse a closed one (409)."""
    db.session.refresh(reward)
    problem = closed_reason(reward, now)
    if problem is not None:
        raise Conflict(problem)


def _hold_points(
    actor: User, total: int, community_id: int, redemption_id: int
) -> LedgerTransaction:
    """Step 4: move ``total`` from the member's wallet to their held account."""
    wallet = ledger.account_for_member(actor.id, AccountKind.MEMBER_AVAILABLE)
    held = ledger.account_for_member(actor.id, AccountKind.MEMBER_HELD)
    return ledger.post_transaction(
        kind=TransactionKind.HOLD,
        legs=[(wallet, -total), (held, total)],
        idempotency_key=f"hold:r{redemption_id}",
        actor=actor,
        member_id=actor.id,
        community_id=community_id,
        redemption_id=redemption_id,
    )


def _reserve_stock(reward: Reward, quantity: int) -> int | None:
    """Step 5: take ``quantity`` from a limited stock by a conditional UPDATE; return the
    stock left (None: unlimited)."""
    if reward.stock is None:
        return None
    stock_after: int | None = db.session.execute(
        _rewards.update()
        .where(_rewards.c.id == reward.id, _rewards.c.stock >= quantity)
        .values(stock=_rewards.c.stock - quantity)
        .returning(_rewards.c.stock)
    ).scalar_one_or_none()
    if stock_after is None:
        raise OutOfStock("Not enough of this reward is left.")
    return stock_after


def _check_limit(
    actor: User, reward: Reward, quantity: int, now: datetime, zone: ZoneInfo
) -> int | None:
    """Step 6: refuse a request over the per-member limit of the period; return the limit."""
    limit = reward.per_member_limit
    if limit is not None:
        used = used_in_period(actor.id, reward, now, zone)
        if used + quantity > limit:
            raise LimitReached(
                f"You may redeem at most {limit} of this reward per "
                f"{PERIOD_LABELS[reward.limit_period]}; you already have {used}."
            )
    return limit


def _insert_redemption(
    actor: User,
    reward: Reward,
    *,
    redemption_id: int,
    community_id: int,
    quantity: int,
    total: int,
    stock_after: int | None,
    limit: int | None,
    zone: ZoneInfo,
    hold: LedgerTransaction,
    key: str | None,
    now: datetime,
) -> tuple[Redemption, str]:
    """Step 7: insert the held redemption with a fresh pickup code; return it and the code."""
    policy = points_policy.current_policy(community_id)
    salt, code, digest = new_code(redemption_id)
    redemption = Redemption(
        id=redemption_id,
        reward_id=reward.id,
        member_id=actor.id,
        community_id=community_id,
        quantity=quantity,
        cost_each=reward.cost,
        total=total,
        status=RedemptionStatus.HELD,
        stock_reserved=stock_after is not None,
        limit_applied=limit,
        period_key=period_key(reward.limit_period, now, zone) if limit is not None else None,
        pickup_code_hash=digest,
        code_salt=salt,
        hold_transaction_id=hold.id,
        idempotency_key=key,
        expires_at=now + timedelta(days=policy.redemption_hold_days),
        created_at=now,
        updated_at=now,
    )
    db.session.add(redemption)
    db.session.flush()
    return redemption, code


def _record_reserve(actor: User, reward: Reward, redemption: Redemption, stock_after: int) -> None:
    """Step 7: the ``reserve`` stock change of the items taken."""
    record_stock_change(
        reward.id,
        StockChangeKind.RESERVE,
        before=stock_after + redemption.quantity,
        after=stock_after,
        actor=actor,
        redemption_id=redemption.id,
    )
    db.session.refresh(reward)


def _announce(actor: User, reward: Reward, redemption: Redemption) -> None:
    """Audit the request and tell the member what is held until when."""
    audit.record(
        actor,
        "redemption.request",
        "redemption",
        redemption.id,
        area_id=redemption.community_id,
        detail={"reward_id": reward.id, "quantity": redemption.quantity, "total": redemption.total},
    )
    audit.notify(
        actor.id,
        "redemption.held",
        object_type="redemption",
        object_id=redemption.id,
        params={
            "reward": reward.name,
            "quantity": redemption.quantity,
            "total": redemption.total,
            "expires_at": redemption.expires_at.isoformat(),
        },
    )
