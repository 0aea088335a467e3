"""Redemption (积分兑换): request, fulfil, cancel, reject, expire -- safe under concurrency.

Design overview
===============

States and who moves them (every step is one ledger transaction, audited, and the
member is notified):

=========  =========  ==============================================  ==================
from       to         who                                             ledger
=========  =========  ==============================================  ==================
(new)      held       a member in the reward's scope                  ``hold`` available -> held
held       fulfilled  the community's secretary, on the pickup code   ``redeem`` held -> redemption sink
held       cancelled  the member, or the community's secretary        ``release`` held -> available
held       rejected   the community's secretary, with a reason        ``release``
held       expired    ``flask --app wsgi redemptions expire`` (cron)  ``release``
=========  =========  ==============================================  ==================

Cancelled, rejected and expired redemptions give their stock back. "The community"
is the member's community inside the reward's scope (:func:`redemption_community`):
its secretary hands the reward over, its redemption sink receives the points.

Request (:func:`request`), in the caller's one write transaction:

1. read-only checks with clear messages (visible 404, may redeem 403, quantity 422,
   open 409);
2. lock the ledger head (``services.ledger.lock_head``) -- the first lock, as the
   ledger's lock order demands; a redemption already made with this request's
   idempotency key is returned instead (replay);
3. allocate the redemption's id (:func:`next_redemption_id`) so the hold can carry it;
4. **hold**: ``post_transaction(hold)``, whose conditional balance UPDATE refuses to
   take the wallet below zero -> :class:`InsufficientPoints` (409);
5. **stock**: ``UPDATE rewards SET stock = stock - :q WHERE id = :id AND stock >= :q``
   (limited stock only); no row -> :class:`OutOfStock` (409);
6. **limit**: the member's held + fulfilled quantity of this reward in the current
   period (month/quarter/year/all, in the community's time zone) plus ``q`` must not
   exceed the limit -> :class:`LimitReached` (409). Race-free without a lock of its
   own: on PostgreSQL step 2 locked the ledger head and step 4 updated the member's
   wallet row, so a second request of the same member waits until this transaction
   commits, and its step-6 query (READ COMMITTED: a fresh snapshot per statement)
   then counts this redemption; on SQLite ``BEGIN IMMEDIATE`` serializes writers.
   ``tests/rewards/test_races.py`` proves it with real processes on both engines;
7. insert the redemption (pickup-code digest) and the ``reserve`` stock change.

A refusal at any step raises, and the caller's ``atomic()`` rolls back everything:
the hold, the stock, the rows.

Transitions (:func:`fulfil`, :func:`cancel`, :func:`reject`, :func:`expire_hold`):

1. lock the ledger head; re-read the status (the common refusal gets a clear 409);
2. post the ledger transaction with its natural key (``redeem:r<id>`` or
   ``release:r<id>``: a redemption can be released at most once, ever);
3. the arbiter: ``UPDATE redemptions SET status = :new, final_transaction_id = ...
   WHERE id = :id AND status = 'held'``; rowcount 0 -> :class:`Conflict` and the whole
   transaction, posting included, rolls back. Of a racing cancel, fulfil and
   expiry exactly one wins;
4. stock back: ``UPDATE rewards SET stock = stock + :q WHERE id = :id AND stock IS
   NOT NULL`` (if stock was reserved) and a ``return`` stock change.

Lock order everywhere: ledger head -> ledger accounts -> redemption -> reward.

Pickup codes: eight digits. The database keeps only an HMAC digest (unique among
held redemptions) and a random salt; the member's pages re-derive the code from
the salt and the application key (``PICKUP_CODE_KEY``, default ``SECRET_KEY``), so
a copy of the database alone yields no usable code. Rotating the key invalidates
the codes of redemptions still held (cancel and request again). The QR code holds
the URL of the fulfilment page with the code filled in.

``ledger verify`` has two checks of redemptions (``redemptions`` and ``reward_stock``,
in ``services/verify/redemptions.py``): every hold/release/redeem matches its redemption,
each member's held balance equals their held redemptions, per-member limits hold,
and every reward's stock is accounted for by its stock changes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import segno
import sqlalchemy as sa
from flask import current_app

from ..database import writing
from ..extensions import db
from ..models import (
    COUNTED_STATUSES,
    AccountKind,
    Area,
    LimitPeriod,
    Redemption,
    RedemptionStatus,
    Reward,
    Role,
    StockChangeKind,
    TransactionKind,
    User,
    utcnow,
)
from ..models.rewards import MAX_QUANTITY, MAX_REASON
from ..zones import area_zone
from . import audit, ledger, permissions, points_policy
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .rewards import MAX_ID, closed_reason, record_stock_change

CODE_DIGITS = 8
#: Members are reminded of a hold this long before it expires.
REMIND_BEFORE = timedelta(days=2)

_redemptions = Redemption.__table__
_rewards = Reward.__table__
_CODE_RE = re.compile(rf"^\d{{{CODE_DIGITS}}}$")

PERIOD_LABELS = {
    LimitPeriod.MONTH: "month",
    LimitPeriod.QUARTER: "quarter",
    LimitPeriod.YEAR: "year",
    LimitPeriod.ALL: "all time",
}


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


# --- pickup codes ----------------------------------------------------------------------


def _code_key() -> bytes:
    cfg = current_app.config
    key = cfg.get("PICKUP_CODE_KEY") or cfg["SECRET_KEY"]
    return key.encode() if isinstance(key, str) else bytes(key)


def derive_code(redemption_id: int, salt: str) -> str:
    """Return the pickup code of a redemption (HMAC of its id and salt, 8 digits)."""
    mac = hmac.new(_code_key(), f"pickup:{redemption_id}:{salt}".encode(), hashlib.sha256)
    return f"{int.from_bytes(mac.digest()[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def code_digest(code: str) -> str:
    """Return the stored digest of a pickup code."""
    return hmac.new(_code_key(), f"pickup-code:{code}".encode(), hashlib.sha256).hexdigest()


def normalise_code(raw: Any) -> str | None:
    """Return the eight digits of a typed code (spaces and dashes ignored), or None."""
    if not isinstance(raw, str):
        return None
    code = re.sub(r"[\s-]", "", raw)
    return code if _CODE_RE.match(code) else None


def pickup_code(redemption: Redemption) -> str:
    """Return the redemption's pickup code (show it to its member only)."""
    return derive_code(redemption.id, redemption.code_salt)


def qr_svg_data_uri(text: str) -> str:
    """Return a QR code of ``text`` as an SVG ``data:`` URI (allowed by the CSP)."""
    return segno.make(text, error="m").svg_data_uri(scale=4, border=2)


# --- periods ---------------------------------------------------------------------------


def _zone(community_id: int | None) -> ZoneInfo:
    area = db.session.get(Area, community_id) if community_id is not None else None
    return area_zone(area)


def period_key(period: LimitPeriod, when: datetime, zone: ZoneInfo) -> str:
    """Return the bucket of ``when``: ``2026-11``, ``2026-Q4``, ``2026`` or ``all``."""
    local = when.astimezone(zone)
    if period == LimitPeriod.MONTH:
        return f"{local.year:04d}-{local.month:02d}"
    if period == LimitPeriod.QUARTER:
        return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
    if period == LimitPeriod.YEAR:
        return f"{local.year:04d}"
    return "all"


def period_start(period: LimitPeriod, when: datetime, zone: ZoneInfo) -> datetime | None:
    """Return the start of the period containing ``when`` (None for ``all``)."""
    local = when.astimezone(zone)
    if period == LimitPeriod.MONTH:
        return datetime(local.year, local.month, 1, tzinfo=zone)
    if period == LimitPeriod.QUARTER:
        return datetime(local.year, 3 * ((local.month - 1) // 3) + 1, 1, tzinfo=zone)
    if period == LimitPeriod.YEAR:
        return datetime(local.year, 1, 1, tzinfo=zone)
    return None


# --- reading ---------------------------------------------------------------------------


def get_redemption(redemption_id: int) -> Redemption:
    """Return the redemption or raise :class:`NotFound`."""
    if not 1 <= redemption_id <= MAX_ID:
        raise NotFound("Redemption not found.")
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None:
        raise NotFound("Redemption not found.")
    return redemption


def get_visible_redemption(actor: User, redemption_id: int) -> Redemption:
    """Return the redemption if ``actor`` may see it; :class:`NotFound` otherwise."""
    redemption = get_redemption(redemption_id)
    if not permissions.may(actor, "redemption.view", redemption):
        raise NotFound("Redemption not found.")
    return redemption


def redemption_community(member: User, reward: Reward) -> int | None:
    """Return the community of ``member``'s member role inside the reward's scope
    (the lowest id if several), or None."""
    found = sorted(
        cid
        for g in member.grants
        if g.role == Role.MEMBER
        and g.area is not None
        and reward.area.covers(g.area)
        and (cid := permissions.community_id_of(g.area)) is not None
    )
    return found[0] if found else None


def used_in_period(member_id: int, reward: Reward, now: datetime, zone: ZoneInfo) -> int:
    """Return how many items of ``reward`` the member holds or received this period."""
    start = period_start(reward.limit_period, now, zone)
    stmt = sa.select(sa.func.coalesce(sa.func.sum(Redemption.quantity), 0)).where(
        Redemption.member_id == member_id,
        Redemption.reward_id == reward.id,
        Redemption.status.in_(list(COUNTED_STATUSES)),
    )
    if start is not None:
        stmt = stmt.where(Redemption.created_at >= start)
    return int(db.session.execute(stmt).scalar_one())


def remaining_allowance(member: User, reward: Reward, now: datetime | None = None) -> int | None:
    """Return how many more items the member may request this period (None: no limit)."""
    if reward.per_member_limit is None:
        return None
    now = now or utcnow()
    zone = _zone(redemption_community(member, reward))
    return max(0, reward.per_member_limit - used_in_period(member.id, reward, now, zone))


def redemptions_stmt(
    actor: User,
    *,
    mine: bool = False,
    status: RedemptionStatus | None = None,
    reward_id: int | None = None,
    community_id: int | None = None,
) -> sa.Select[Any]:
    """Return a SELECT of the redemptions ``actor`` may see (own, plus those of the
    communities they are secretary of, plus an officer's subtree), newest first."""
    r = Redemption
    visible: list[sa.ColumnElement[bool]] = [r.member_id == actor.id]
    if not mine:
        if permissions.is_admin(actor):
            visible.append(sa.true())
        secretary_of = permissions.communities_of(actor, [Role.SECRETARY])
        if secretary_of:
            visible.append(r.community_id.in_(sorted(secretary_of)))
        officer_paths = [a.path for a in permissions.grant_areas(actor, [Role.OFFICER])]
        if officer_paths:
            under = sa.select(Area.id).where(
                sa.or_(*[Area.path.startswith(p, autoescape=True) for p in officer_paths])
            )
            visible.append(r.community_id.in_(under))
    stmt = sa.select(r).where(sa.or_(*visible))
    if status is not None:
        stmt = stmt.where(r.status == status)
    if reward_id is not None:
        stmt = stmt.where(r.reward_id == reward_id)
    if community_id is not None:
        stmt = stmt.where(r.community_id == community_id)
    return stmt.order_by(r.id.desc())


def find_held_by_code(actor: User, raw_code: Any) -> Redemption | None:
    """Return the held redemption with this pickup code that ``actor`` may hand over."""
    code = normalise_code(raw_code)
    if code is None:
        return None
    redemption = db.session.execute(
        sa.select(Redemption).where(
            Redemption.pickup_code_hash == code_digest(code),
            Redemption.status == RedemptionStatus.HELD,
        )
    ).scalar_one_or_none()
    if redemption is None or not permissions.may(actor, "redemption.handle", redemption):
        return None
    return redemption


def present(redemption: Redemption, viewer: User | None) -> dict[str, Any]:
    """Return the redemption as a dict; the pickup code only for its member while held."""
    own_held = (
        viewer is not None
        and viewer.id == redemption.member_id
        and redemption.status == RedemptionStatus.HELD
    )
    return {
        "id": redemption.id,
        "reward_id": redemption.reward_id,
        "reward_name": redemption.reward.name,
        "sponsor": redemption.reward.sponsor,
        "member_id": redemption.member_id,
        "member_name": redemption.member.display_name,
        "community_id": redemption.community_id,
        "quantity": redemption.quantity,
        "cost_each": redemption.cost_each,
        "total": redemption.total,
        "status": redemption.status.value,
        "expires_at": redemption.expires_at,
        "reason": redemption.reason,
        "decided_by_id": redemption.decided_by_id,
        "hold_transaction_id": redemption.hold_transaction_id,
        "final_transaction_id": redemption.final_transaction_id,
        "created_at": redemption.created_at,
        "updated_at": redemption.updated_at,
        "pickup_code": pickup_code(redemption) if own_held else None,
    }


# --- request -------------------------------------------------------------------------------


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


def _new_code(redemption_id: int) -> tuple[str, str, str]:
    """Return ``(salt, code, digest)`` with a code no held redemption uses.

    Runs after the ledger head lock, so no concurrent request can take the same code
    between the check and the insert (the partial UNIQUE index is the backstop).
    """
    for _attempt in range(20):
        salt = secrets.token_hex(16)
        code = derive_code(redemption_id, salt)
        digest = code_digest(code)
        taken = db.session.execute(
            sa.select(Redemption.id).where(
                Redemption.pickup_code_hash == digest, Redemption.status == RedemptionStatus.HELD
            )
        ).first()
        if taken is None:
            return salt, code, digest
    raise Conflict("Could not allocate a pickup code; try again.")  # pragma: no cover


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
    if not permissions.may(actor, "reward.view", reward):
        raise NotFound("Reward not found.")
    permissions.require(actor, "reward.redeem", reward)
    quantity = _check_quantity(quantity)
    community_id = redemption_community(actor, reward)
    if community_id is None:  # pragma: no cover - reward.redeem implies a community
        raise Forbidden("You are not allowed to do this.", action="reward.redeem")
    key = request_key(actor.id, idempotency_key) if idempotency_key else None

    ledger.lock_head()
    if key is not None:
        existing = db.session.execute(
            sa.select(Redemption).where(Redemption.idempotency_key == key)
        ).scalar_one_or_none()
        if existing is not None:
            if existing.reward_id != reward.id or existing.quantity != quantity:
                raise Conflict("This idempotency key was already used for another request.")
            return Issued(existing, pickup_code(existing), replayed=True)
    db.session.refresh(reward)
    problem = closed_reason(reward, now)
    if problem is not None:
        raise Conflict(problem)

    total = reward.cost * quantity
    redemption_id = next_redemption_id()
    wallet = ledger.account_for_member(actor.id, AccountKind.MEMBER_AVAILABLE)
    held = ledger.account_for_member(actor.id, AccountKind.MEMBER_HELD)
    hold = ledger.post_transaction(
        kind=TransactionKind.HOLD,
        legs=[(wallet, -total), (held, total)],
        idempotency_key=f"hold:r{redemption_id}",
        actor=actor,
        member_id=actor.id,
        community_id=community_id,
        redemption_id=redemption_id,
    )

    stock_after: int | None = None
    if reward.stock is not None:
        stock_after = db.session.execute(
            _rewards.update()
            .where(_rewards.c.id == reward.id, _rewards.c.stock >= quantity)
            .values(stock=_rewards.c.stock - quantity)
            .returning(_rewards.c.stock)
        ).scalar_one_or_none()
        if stock_after is None:
            raise OutOfStock("Not enough of this reward is left.")

    zone = _zone(community_id)
    limit = reward.per_member_limit
    if limit is not None:
        used = used_in_period(actor.id, reward, now, zone)
        if used + quantity > limit:
            raise LimitReached(
                f"You may redeem at most {limit} of this reward per "
                f"{PERIOD_LABELS[reward.limit_period]}; you already have {used}."
            )

    policy = points_policy.current_policy(community_id)
    salt, code, digest = _new_code(redemption_id)
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
    if stock_after is not None:
        record_stock_change(
            reward.id,
            StockChangeKind.RESERVE,
            before=stock_after + quantity,
            after=stock_after,
            actor=actor,
            redemption_id=redemption.id,
        )
        db.session.refresh(reward)
    audit.record(
        actor,
        "redemption.request",
        "redemption",
        redemption.id,
        area_id=community_id,
        detail={"reward_id": reward.id, "quantity": quantity, "total": total},
    )
    audit.notify(
        actor.id,
        "redemption.held",
        object_type="redemption",
        object_id=redemption.id,
        params={
            "reward": reward.name,
            "quantity": quantity,
            "total": total,
            "expires_at": redemption.expires_at.isoformat(),
        },
    )
    return Issued(redemption, code)


# --- transitions -----------------------------------------------------------------------


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


def _close(
    actor: User | None,
    redemption: Redemption,
    new_status: RedemptionStatus,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> Redemption:
    """Move a held redemption to ``new_status`` (steps 1-4 of the overview)."""
    now = now or utcnow()
    ledger.lock_head()
    db.session.refresh(redemption)
    _ensure_held(redemption)
    if new_status == RedemptionStatus.EXPIRED and redemption.expires_at > now:
        raise Conflict("This redemption has not expired yet.")

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
    result = db.session.execute(
        _redemptions.update()
        .where(_redemptions.c.id == redemption.id, _redemptions.c.status == RedemptionStatus.HELD)
        .values(
            status=new_status,
            final_transaction_id=tx.id,
            decided_by_id=actor.id if actor is not None else None,
            reason=reason,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        raise Conflict("This redemption was closed by someone else just now.")

    if new_status != RedemptionStatus.FULFILLED and redemption.stock_reserved:
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
    db.session.refresh(redemption)
    db.session.refresh(redemption.reward)

    audit.record(
        actor,
        f"redemption.{new_status.value}",
        "redemption",
        redemption.id,
        area_id=redemption.community_id,
        detail={"transaction_id": tx.id, "reason": reason, "total": redemption.total},
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
    return redemption


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
    :raises ValidationFailed: the pickup code is malformed or wrong (422).
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
    if not hmac.compare_digest(code_digest(normal), redemption.pickup_code_hash):
        raise ValidationFailed(
            "The pickup code is wrong.", errors={"pickup_code": ["Wrong pickup code."]}
        )
    return _close(actor, redemption, RedemptionStatus.FULFILLED, now=now)


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
    return _close(actor, redemption, RedemptionStatus.CANCELLED, reason=text, now=now)


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
    return _close(actor, redemption, RedemptionStatus.REJECTED, reason=text, now=now)


# --- expiry of holds (cron) -----------------------------------------------------------------


def due_holds(now: datetime | None = None) -> list[int]:
    """Return the ids of held redemptions whose hold has run out, oldest first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            sa.select(Redemption.id)
            .where(Redemption.status == RedemptionStatus.HELD, Redemption.expires_at <= now)
            .order_by(Redemption.id)
        )
    )


def expire_hold(redemption_id: int, now: datetime | None = None) -> bool:
    """Expire one held redemption whose hold has run out (the system); return True if
    this call expired it, False if it was not due or someone else closed it first.

    Idempotent and safe to run concurrently: the conditional UPDATE decides.
    """
    now = now or utcnow()
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None:
        return False
    try:
        with db.session.begin_nested():
            _close(None, redemption, RedemptionStatus.EXPIRED, now=now)
    except Conflict:
        return False
    return True


def expire_holds(now: datetime | None = None) -> list[int]:
    """Expire every due hold inside the current transaction; return the ids expired.

    The CLI runs :func:`expire_hold` in one transaction per redemption instead, so the
    ledger is never locked for a whole batch.
    """
    return [rid for rid in due_holds(now) if expire_hold(rid, now)]


def remind_expiring(now: datetime | None = None, within: timedelta = REMIND_BEFORE) -> int:
    """Notify members once whose holds expire within ``within``; return how many.

    A conditional ``UPDATE ... WHERE reminded_at IS NULL`` makes it idempotent.
    """
    now = now or utcnow()
    rows = db.session.execute(
        _redemptions.update()
        .where(
            _redemptions.c.status == RedemptionStatus.HELD,
            _redemptions.c.reminded_at.is_(None),
            _redemptions.c.expires_at <= now + within,
            _redemptions.c.expires_at > now,
        )
        .values(reminded_at=now)
        .returning(_redemptions.c.id, _redemptions.c.member_id, _redemptions.c.expires_at)
    ).all()
    for row in rows:
        audit.notify(
            row.member_id,
            "redemption.expiring",
            object_type="redemption",
            object_id=row.id,
            params={"expires_at": row.expires_at.isoformat()},
        )
    return len(rows)
