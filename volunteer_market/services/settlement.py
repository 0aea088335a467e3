"""Settlement (结算): a delivery's points posted to the ledger, exactly once.

Design overview
===============

When. Automatically, in the transaction of the rating by which every beneficiary
has rated (``services/ratings``; ``settled_by_id`` NULL). Otherwise by the
secretary of the delivery's community (never one who served in it) once the
rating window has closed (:func:`settle`); before that, 409.

Nobody rated. The secretary must pass ``confirm_unrated=True``; without it the
request is refused with **409** (the delivery's state, not the request's shape, is
what is missing: the same request is fine for a delivery with ratings) and
``errors.confirm_unrated``. Confirmed, the multiplier is the policy's
``unrated_multiplier_percent``, **1.0** in the default policy: the secretary vouches
for a service nobody could rate (a resident without a phone, a delivery without
named beneficiaries), so it earns like a plain "good" (3.5-4.5) service, neither
the bonus of a top rating nor a penalty for the residents' silence. When some but
not all beneficiaries rated, the average of the given ratings counts and no
confirmation is needed.

Arithmetic. ``points = points_policy.points_for(minutes, average, policy)`` per
participant with the policy version in force at settlement, recorded on the
:class:`~volunteer_market.models.Settlement` (``policy_id``, ``policy_version``) so a
later policy never rewrites history. Minutes come only from the delivery record
(``delivery_participants.minutes``). Contract: 2 h rated 5 and 4 -> 24 points.

Exactly once, under concurrency, on both engines:

1. the head of the delivery's community chain is locked first (the ledger's lock
   order), then the delivery row (``FOR UPDATE``); concurrent settles and ratings of
   one delivery serialise; the participants' wallets are locked ascending before the
   earns (they are shared with other communities' postings);
2. ``UPDATE deliveries SET status='settled' WHERE id=:id AND status='awaiting_ratings'``
   -- rowcount 0 -> 409 "already settled";
3. ``settlements.delivery_id`` is UNIQUE;
4. each earn uses the ledger's natural key ``earn:d<delivery>:u<member>`` and the
   partial UNIQUE index on ``(delivery_id, member_id)`` of earns.

Zero points. A participant whose points compute to 0 (average below the lowest
threshold) gets no ledger transaction (the ledger refuses amount 0). Their hours are
still recorded: in the delivery record and in their :class:`SettlementPosting` line
(``minutes``, ``points = 0``, no ``transaction_id``), which reports and rankings of
hours read alongside the ledger's earns. They are notified (``points.none``) with
the reason.

Notifications: each participant gets ``points.earned`` (points, minutes, average,
multiplier, reason) or ``points.none``.

The ledger check ``settlements`` (``services/verify/settlements.py``) proves
that every settlement line agrees with its earn (delivery, member, minutes, points),
that totals add up, and that a delivery is settled exactly when it has a settlement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import (
    AccountKind,
    Delivery,
    DeliveryBeneficiary,
    DeliveryParticipant,
    DeliveryStatus,
    LedgerAccount,
    PointsPolicy,
    Project,
    Rating,
    Role,
    Settlement,
    SettlementPosting,
    User,
    utcnow,
)
from . import audit, ledger, outbox, permissions
from . import points_policy as policy_service
from .deliveries import lock_delivery, project_title, scores_of
from .errors import Conflict, NotFound
from .rankings.members import member_states

_FOUR = Decimal("0.0001")


def _decimal(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        _FOUR, rounding=ROUND_HALF_UP
    )


def _fmt(value: Decimal | None) -> str:
    """Return ``4.5000`` as ``4.5`` and ``1.0000`` as ``1.0``."""
    if value is None:
        return "-"
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def settle(
    actor: User,
    delivery: Delivery,
    *,
    confirm_unrated: bool = False,
    now: datetime | None = None,
) -> Settlement:
    """Settle a delivery as its community's secretary, after the rating window.

    :raises Forbidden: not the secretary of the delivery's community, or a participant.
    :raises Conflict: already settled or cancelled; the window is still open and not
        every beneficiary rated; nobody rated and ``confirm_unrated`` is not true.
    """
    now = now or utcnow()
    permissions.require(actor, "settlement.settle", delivery)
    # The head of the delivery's community chain (the earns post there), then the
    # delivery row: a settlement of this delivery, a rating that settles it, an appeal
    # of it all take the same head, so they run one after another.
    ledger.lock_head(delivery.community_id)
    locked = lock_delivery(delivery.id)
    if locked.status == DeliveryStatus.SETTLED:
        raise Conflict("This delivery has already been settled.")
    if locked.status != DeliveryStatus.AWAITING_RATINGS:
        raise Conflict(f"A delivery that is {locked.status.value} cannot be settled.")
    scores = scores_of(locked.id)
    beneficiaries = db.session.execute(
        sa.select(sa.func.count(DeliveryBeneficiary.id)).where(
            DeliveryBeneficiary.delivery_id == locked.id
        )
    ).scalar_one()
    all_rated = beneficiaries > 0 and len(scores) == beneficiaries
    if now < locked.rating_deadline and not all_rated:
        raise Conflict(
            "The rating window is open until "
            f"{locked.rating_deadline.isoformat(timespec='minutes')}; settle after it "
            "closes (it settles by itself when every beneficiary has rated)."
        )
    if not scores and confirm_unrated is not True:
        raise Conflict(
            "Nobody rated this delivery. Confirm to settle it unrated "
            "(confirm_unrated: true; multiplier 1.0).",
            errors={"confirm_unrated": ["Required when nobody rated."]},
        )
    return settle_locked(actor, locked, now=now, scores=scores)


def settle_locked(
    actor: User | None,
    delivery: Delivery,
    *,
    now: datetime | None = None,
    scores: list[int] | None = None,
) -> Settlement:
    """Settle ``delivery`` whose row the caller locked (after the chain head).

    ``actor`` None is the automatic settlement. The rules of *when* are the caller's.
    ``scores``: the delivery's scores if the caller already read them after locking
    the delivery (ratings lock it too, so they cannot have changed); else read here.

    Steps, in this order: mark the delivery settled (the arbiter), compute the shares,
    insert the settlement, post one earn and one settlement line per participant,
    audit, notify.

    :raises Conflict: the delivery was settled meanwhile (conditional UPDATE, UNIQUE).
    """
    now = now or utcnow()
    _mark_settled(delivery)
    policy = policy_service.current_policy(delivery.community_id)
    assert policy.id is not None  # inside atomic(): the default policy row exists
    if scores is None:
        scores = scores_of(delivery.id)
    shares = _shares(delivery, scores, policy)
    settlement = _insert_settlement(actor, delivery, policy, shares, now)
    title = project_title(delivery)
    reason = _reason(delivery, title, settlement, policy.base_rate)
    lines = _post_earns(actor, delivery, policy, settlement, shares, reason)
    _audit_settlement(actor, delivery, settlement, policy)
    _notify_participants(delivery, title, settlement, lines, reason)
    return settlement


@dataclass(frozen=True)
class _Shares:
    """The arithmetic of one settlement (nothing written yet)."""

    scores: list[int]
    average: Fraction | None
    factor: Fraction
    #: Each participant's delivery line and points, in user id order.
    lines: list[tuple[DeliveryParticipant, int]]


def _mark_settled(delivery: Delivery) -> None:
    """``UPDATE ... SET status = 'settled' WHERE status = 'awaiting_ratings'``; 409 if
    another transaction settled it first."""
    changed = cast(
        sa.CursorResult[Any],
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.AWAITING_RATINGS)
            .values(status=DeliveryStatus.SETTLED)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if changed != 1:
        raise Conflict("This delivery has already been settled.")
    set_committed_value(delivery, "status", DeliveryStatus.SETTLED)


def _shares(delivery: Delivery, scores: list[int], policy: PointsPolicy) -> _Shares:
    """Return the average, the multiplier and each participant's points."""
    avg = policy_service.average_score(scores)
    factor = policy_service.multiplier(avg, policy)
    participants = list(
        db.session.execute(
            sa.select(DeliveryParticipant)
            .where(DeliveryParticipant.delivery_id == delivery.id)
            .order_by(DeliveryParticipant.user_id)
        ).scalars()
    )
    # Each participant's points (pure arithmetic): the totals go into the INSERT.
    lines = [(p, policy_service.points_for(p.minutes, avg, policy)) for p in participants]
    return _Shares(scores, avg, factor, lines)


def _insert_settlement(
    actor: User | None,
    delivery: Delivery,
    policy: PointsPolicy,
    shares: _Shares,
    now: datetime,
) -> Settlement:
    """Insert the settlement record (UNIQUE per delivery: a second one is a 409)."""
    scores, avg = shares.scores, shares.average
    settlement = Settlement(
        delivery_id=delivery.id,
        community_id=delivery.community_id,
        policy_id=policy.id,
        policy_version=policy.version,
        ratings_count=len(scores),
        score_sum=sum(scores),
        average_score=_decimal(avg) if avg is not None else None,
        multiplier=_decimal(shares.factor),
        confirmed_unrated=not scores,
        settled_by_id=actor.id if actor is not None else None,
        settled_at=now,
        total_points=sum(points for _p, points in shares.lines),
        total_minutes=sum(p.minutes for p, _points in shares.lines),
    )
    # No savepoint: ``_mark_settled`` under the delivery's lock already makes this the
    # one settlement; the UNIQUE is the backstop, and its violation ends the whole
    # transaction (atomic() rolls it back as the Conflict passes through).
    db.session.add(settlement)
    try:
        db.session.flush()
    except IntegrityError:
        raise Conflict("This delivery has already been settled.") from None
    return settlement


def _post_earns(
    actor: User | None,
    delivery: Delivery,
    policy: PointsPolicy,
    settlement: Settlement,
    shares: _Shares,
    reason: str,
) -> list[SettlementPosting]:
    """Post each participant's earn (none for 0 points) and write their settlement line."""
    lines = []
    # The participants' wallets are shared with other communities' postings: lock
    # them all first, ascending (lock order: heads, then accounts by id).
    earners = [p.user_id for p, points in shares.lines if points > 0]
    wallets = ledger.lock_member_accounts(earners)
    # Their ranking states, read once for every earn's rollups (kept for the transaction).
    member_states(earners)
    # The community's issuance account: read (created on first use) by the first earn,
    # after that member's wallet -- the order accounts were always created in, which
    # bench.generate reproduces -- then passed to the other earns.
    source: LedgerAccount | None = None
    for p, points in shares.lines:
        tx = ledger.earn(
            actor,
            wallet=wallets.get(p.user_id),
            source=source,
            member_id=p.user_id,
            community_id=delivery.community_id,
            delivery_id=delivery.id,
            points=points,
            minutes=p.minutes,
            policy_id=policy.id,
            reason=reason,
        )
        lines.append(
            SettlementPosting(
                settlement_id=settlement.id,
                delivery_id=delivery.id,
                user_id=p.user_id,
                minutes=p.minutes,
                counted_minutes=policy_service.counted_minutes(p.minutes, policy),
                points=points,
                transaction_id=tx.id if tx is not None else None,
            )
        )
        if tx is not None and source is None:
            source = next(e.account for e in tx.entries if e.account.kind == AccountKind.ISSUANCE)
    db.session.add_all(lines)  # added after the earns: one INSERT for all the lines
    db.session.flush()
    set_committed_value(settlement, "postings", lines)
    return lines


def _audit_settlement(
    actor: User | None, delivery: Delivery, settlement: Settlement, policy: PointsPolicy
) -> None:
    audit.record(
        actor,
        "delivery.settle",
        "delivery",
        delivery.id,
        area_id=delivery.community_id,
        detail={
            "settlement_id": settlement.id,
            "automatic": actor is None,
            "ratings_count": settlement.ratings_count,
            "average_score": _fmt(settlement.average_score),
            "multiplier": _fmt(settlement.multiplier),
            "confirmed_unrated": settlement.confirmed_unrated,
            "policy_id": policy.id,
            "policy_version": policy.version,
            "total_points": settlement.total_points,
        },
    )


def _notify_participants(
    delivery: Delivery,
    title: str,
    settlement: Settlement,
    lines: list[SettlementPosting],
    reason: str,
) -> None:
    """Tell each participant their points (``points.earned``) or why none (``points.none``)."""
    outbox.prefetch_preferences([line.user_id for line in lines])
    for line in lines:
        params = {
            "title": title,
            "delivery_id": delivery.id,
            "points": line.points,
            "minutes": line.minutes,
            "average_score": _fmt(settlement.average_score),
            "multiplier": _fmt(settlement.multiplier),
            "reason": reason,
        }
        audit.notify(
            line.user_id,
            "points.earned" if line.points > 0 else "points.none",
            object_type="delivery",
            object_id=delivery.id,
            params=params,
        )


def _reason(delivery: Delivery, title: str, s: Settlement, base_rate: int) -> str:
    """Return the ledger reason of the earns: source, arithmetic and policy version."""
    if s.ratings_count:
        basis = f"{s.ratings_count} 人评价，平均 {_fmt(s.average_score)} 分"
    else:
        basis = "无人评价，书记确认结算"
    text = (
        f"服务记录 #{delivery.id}「{title}」结算：时长 × {base_rate} 分/小时 × 系数 "
        f"{_fmt(s.multiplier)}（{basis}；积分规则 v{s.policy_version}）"
    )
    return text[: ledger.MAX_REASON]


# --- reading ------------------------------------------------------------------


def get_settlement(delivery_id: int) -> Settlement:
    """Return the delivery's settlement with its lines.

    :raises NotFound: the delivery is not settled.
    """
    settlement = db.session.execute(
        sa.select(Settlement)
        .where(Settlement.delivery_id == delivery_id)
        .options(selectinload(Settlement.postings))
    ).scalar_one_or_none()
    if settlement is None:
        raise NotFound("This delivery has not been settled.")
    return settlement


def present(settlement: Settlement) -> dict[str, Any]:
    """Return the settlement as the API's ``SettlementOut`` dict."""
    return {
        "status": DeliveryStatus.SETTLED.value,
        "delivery_id": settlement.delivery_id,
        "settlement_id": settlement.id,
        "postings": [
            {
                "user_id": line.user_id,
                "points": line.points,
                "minutes": line.minutes,
                "counted_minutes": line.counted_minutes,
                "transaction_id": line.transaction_id,
            }
            for line in settlement.postings
        ],
        "ratings_count": settlement.ratings_count,
        "average_score": float(settlement.average_score)
        if settlement.average_score is not None
        else None,
        "multiplier": float(settlement.multiplier),
        "confirmed_unrated": settlement.confirmed_unrated,
        "policy_id": settlement.policy_id,
        "policy_version": settlement.policy_version,
        "total_points": settlement.total_points,
        "total_minutes": settlement.total_minutes,
        "automatic": settlement.settled_by_id is None,
        "settled_by_id": settlement.settled_by_id,
        "settled_at": settlement.settled_at,
    }


def queue(actor: User, *, community_id: int | None = None) -> sa.Select[Any]:
    """Return a SELECT of ``(Delivery, title, ratings_count, beneficiaries_count)`` awaiting
    settlement in the communities where ``actor`` is secretary, closed windows first.

    :raises Forbidden: the actor is no secretary.
    """
    permissions.require(actor, "settlement.queue")
    communities = sorted(permissions.communities_of(actor, [Role.SECRETARY]))
    if community_id is not None:
        communities = [c for c in communities if c == community_id]
    ratings_count = (
        sa.select(sa.func.count(Rating.id))
        .where(Rating.delivery_id == Delivery.id)
        .correlate(Delivery)
        .scalar_subquery()
    )
    beneficiaries_count = (
        sa.select(sa.func.count(DeliveryBeneficiary.id))
        .where(DeliveryBeneficiary.delivery_id == Delivery.id)
        .correlate(Delivery)
        .scalar_subquery()
    )
    return (
        sa.select(
            Delivery,
            Project.title,
            ratings_count.label("ratings_count"),
            beneficiaries_count.label("beneficiaries_count"),
        )
        .join(Project, Project.id == Delivery.project_id)
        .where(
            Delivery.community_id.in_(communities or [0]),
            Delivery.status == DeliveryStatus.AWAITING_RATINGS,
        )
        .order_by(Delivery.rating_deadline, Delivery.id)
    )


def queue_row(row: Any, now: datetime | None = None) -> dict[str, Any]:
    """Return one row of :func:`queue` as a dict with the window state."""
    now = now or utcnow()
    delivery, title, ratings_count, beneficiaries_count = row
    open_ = now < delivery.rating_deadline
    return {
        "delivery_id": delivery.id,
        "project_id": delivery.project_id,
        "title": title,
        "community_id": delivery.community_id,
        "started_at": delivery.started_at,
        "ended_at": delivery.ended_at,
        "rating_deadline": delivery.rating_deadline,
        "window_open": open_,
        "ratings_count": int(ratings_count),
        "beneficiaries_count": int(beneficiaries_count),
        "settleable": not open_,
        "needs_confirmation": int(ratings_count) == 0,
    }
