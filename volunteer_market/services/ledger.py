"""The points ledger (积分账本): the only code that writes ledger rows.

Design overview
===============

Double entry. Every movement of points is a :class:`LedgerTransaction` with two or
more :class:`LedgerEntry` legs whose amounts sum to zero. Accounts
(:class:`LedgerAccount`):

============================  =================================  ==================
kind                          owner                              balance
============================  =================================  ==================
``member_available``          one per member (the wallet)        never < 0
``member_held``               one per member (pending redemptions) never < 0
``issuance``                  one per community                  goes negative
``redemption_sink``           one per community                  grows
``expiry_sink``               one per community                  grows
``adjustment``                one per community                  either sign
============================  =================================  ==================

Kinds of transaction and their usual legs: ``earn`` issuance -> available (a
delivery's settlement; carries ``delivery_id``, ``minutes``, ``policy_id``);
``hold`` available -> held, ``release`` held -> available, ``redeem`` held ->
redemption sink (a redemption; ``redemption_id``); ``expire`` available -> expiry
sink; ``adjust`` adjustment <-> available (a secretary, with a reason);
``reverse`` the negated legs of an earlier earn/adjust/expire, with a reason
(``reverses_id``; at most once; it copies the original's references, including
``minutes``, so rollups subtract hours as well as points).

Two balances. ``balance`` on the member's accounts is the wallet (available) and
the held amount. The service record is ``earned`` on the available account: it
moves only with earns and reversals of earns, so redemption and expiry never
lower it (rankings and evaluation read it).

Posting (:func:`post_transaction`), all inside the caller's ``atomic()``:

1. lock the head row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite
   ``atomic()``'s ``BEGIN IMMEDIATE`` already serializes writers);
2. if a transaction with the idempotency key exists, return it (nothing posted);
3. in a savepoint, per leg ``UPDATE ledger_accounts SET balance = balance + :amt
   WHERE id = :id AND (kind is not a member kind OR balance + :amt >= 0)``;
   no row -> :class:`InsufficientPoints` (409) and nothing of it stays;
4. insert the transaction with its hash and its entries; advance the head;
5. call :func:`_after_post` (rollups maintained in the same transaction).

Lock order (the rule that keeps PostgreSQL free of deadlocks): **the ledger head
row first, then ledger accounts, then anything else** (reward stock,
redemptions, rollups). Every helper here that creates or touches accounts takes
the head lock first, so callers get the order for free; a service that also moves
stock posts first and updates stock afterwards.

Append-only. No code path updates or deletes entries or transactions, and
database triggers on both engines refuse it (``models.ledger.ledger_trigger_ddl``).
A correction is a reversing transaction (:func:`reverse`) or an adjustment
(:func:`adjust`), each with a reason.

Tamper evidence. Each transaction stores ``prev_hash`` (the previous
transaction's hash) and ``hash`` = sha256 over the canonical JSON of its content
(kind, key, references, actor, reason, time, sorted ``[account_id, amount]``
entries) and ``prev_hash``. ``services/ledger_verify.py`` recomputes the chain
and every invariant.

Idempotency. Every posting has a unique key. Natural keys make retries safe:
``earn:d<delivery>:u<member>``, ``reverse:t<transaction>``; API requests with an
``Idempotency-Key`` header also replay their first response (``api/idempotency.py``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from ..database import writing
from ..extensions import db
from ..models import (
    GENESIS_HASH,
    MEMBER_KINDS,
    AccountKind,
    Area,
    LedgerAccount,
    LedgerEntry,
    LedgerHead,
    LedgerTransaction,
    Role,
    RoleGrant,
    TransactionKind,
    User,
    utcnow,
)
from ..models.ledger import MAX_ADJUSTMENT, MAX_REASON, owner_key
from ..zones import DEFAULT_TIMEZONE, zone
from . import audit, permissions
from .errors import (
    AlreadyReversed,
    Conflict,
    Forbidden,
    InsufficientPoints,
    NotFound,
    ValidationFailed,
)

Leg = tuple[LedgerAccount, int]

#: Kinds that :func:`reverse` corrects; holds and redemptions are undone through the
#: redemption (release), never by reversal.
REVERSIBLE_KINDS = frozenset({TransactionKind.EARN, TransactionKind.ADJUST, TransactionKind.EXPIRE})
COMMUNITY_ACCOUNT_KINDS = frozenset(
    {
        AccountKind.ISSUANCE,
        AccountKind.REDEMPTION_SINK,
        AccountKind.EXPIRY_SINK,
        AccountKind.ADJUSTMENT,
    }
)

_accounts = LedgerAccount.__table__
_head = LedgerHead.__table__


def _require_write() -> None:
    if not writing():
        raise RuntimeError("ledger writes must run inside database.atomic()")


def _insert(model: Any) -> Any:
    """Return a dialect INSERT for ``model`` that supports ``on_conflict_do_nothing``."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


# --- the head (posting lock and end of the hash chain) ---------------------------------


def lock_head() -> tuple[int | None, str]:
    """Lock the ledger head row (creating it once) and return ``(last id, last hash)``.

    The first lock every posting takes (see "Lock order" above). Idempotent within
    a transaction.
    """
    _require_write()
    txn = _current_transaction()
    held = db.session.info.get(_HEAD_HELD)
    if held is not None and txn is not None and held[0] is txn:
        return held[1], held[2]  # already locked (and read) in this very (sub)transaction
    stmt = (
        sa.select(_head.c.last_transaction_id, _head.c.last_hash)
        .where(_head.c.id == 1)
        .with_for_update()
    )
    row = db.session.execute(stmt).one_or_none()
    if row is None:
        db.session.execute(
            _insert(LedgerHead)
            .values(id=1, last_hash=GENESIS_HASH, transaction_count=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = db.session.execute(stmt).one()
    _remember_head(row.last_transaction_id, row.last_hash)
    return row.last_transaction_id, row.last_hash


#: ``session.info`` key: ``(transaction, last id, last hash)`` of the head as locked and
#: read (or last written) in that transaction. A repeated :func:`lock_head` in the same
#: innermost (sub)transaction returns it without another ``SELECT .. FOR UPDATE``; in
#: any other (sub)transaction -- a savepoint opened or ended since, a new transaction --
#: the head is read again, so a rolled-back savepoint can never leave a stale hash.
_HEAD_HELD = "ledger.head_held"


def _current_transaction() -> Any:
    session = db.session()
    return session.get_nested_transaction() or session.get_transaction()


def _remember_head(last_id: int | None, last_hash: str) -> None:
    txn = _current_transaction()
    if txn is None:
        db.session.info.pop(_HEAD_HELD, None)
    else:
        db.session.info[_HEAD_HELD] = (txn, last_id, last_hash)


# --- accounts ----------------------------------------------------------------------------


def _account(kind: AccountKind, user_id: int | None, community_id: int | None) -> LedgerAccount:
    """Return the account of this owner, creating it race-safely (after the head lock)."""
    lock_head()
    key = owner_key(kind, user_id, community_id)
    stmt = (
        sa.select(LedgerAccount)
        .where(LedgerAccount.owner_key == key)
        .execution_options(populate_existing=True)
    )
    account = db.session.execute(stmt).scalar_one_or_none()
    if account is None:
        db.session.execute(
            _insert(LedgerAccount)
            .values(
                kind=kind,
                user_id=user_id,
                community_id=community_id,
                owner_key=key,
                balance=0,
                earned=0,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["owner_key"])
        )
        account = db.session.execute(stmt).scalar_one()
    return account


def account_for_member(
    user_id: int, kind: AccountKind = AccountKind.MEMBER_AVAILABLE
) -> LedgerAccount:
    """Return the member's available (wallet) or held account, creating it if needed."""
    kind = AccountKind(kind)
    if kind not in MEMBER_KINDS:
        raise ValueError(f"{kind} is not a member account kind")
    return _account(kind, user_id, None)


def issuance_account(community_id: int) -> LedgerAccount:
    """Return the community's issuance account (the source of earned points)."""
    return _account(AccountKind.ISSUANCE, None, community_id)


def sink_account(kind: AccountKind, community_id: int) -> LedgerAccount:
    """Return the community's redemption or expiry sink."""
    kind = AccountKind(kind)
    if kind not in (AccountKind.REDEMPTION_SINK, AccountKind.EXPIRY_SINK):
        raise ValueError(f"{kind} is not a sink")
    return _account(kind, None, community_id)


def adjustment_account(community_id: int) -> LedgerAccount:
    """Return the community's adjustment account."""
    return _account(AccountKind.ADJUSTMENT, None, community_id)


# --- hashing -----------------------------------------------------------------------------


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
) -> str:
    """Return the sha256 hex of a transaction's canonical JSON (content + prev_hash)."""
    doc = {
        "v": 1,
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
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


# --- posting -----------------------------------------------------------------------------


def _check_legs(kind: TransactionKind, legs: Sequence[Leg], member_id: int | None) -> int | None:
    """Validate the legs (programming errors -> ValueError); return the member id."""
    if len(legs) < 2:
        raise ValueError("a transaction needs at least two legs")
    seen: set[int] = set()
    members: set[int] = set()
    total = 0
    for account, amount in legs:
        if not isinstance(account, LedgerAccount) or account.id is None:
            raise ValueError("a leg needs a persisted LedgerAccount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
            raise ValueError(f"a leg amount is a non-zero integer: {amount!r}")
        if account.id in seen:
            raise ValueError("each account may appear once per transaction")
        seen.add(account.id)
        total += amount
        if account.kind in MEMBER_KINDS:
            members.add(account.user_id)  # type: ignore[arg-type]
    if total != 0:
        raise ValueError(f"legs must sum to zero (sum is {total})")
    if len(members) > 1:
        raise ValueError("a transaction moves the points of one member at most")
    if members:
        owner = next(iter(members))
        if member_id is not None and member_id != owner:
            raise ValueError("member_id does not own the member accounts of the legs")
        return owner
    return member_id


def post_transaction(
    *,
    kind: TransactionKind | str,
    legs: Sequence[Leg],
    idempotency_key: str,
    actor: User | None,
    member_id: int | None = None,
    community_id: int | None = None,
    delivery_id: int | None = None,
    redemption_id: int | None = None,
    reverses_id: int | None = None,
    minutes: int | None = None,
    policy_id: int | None = None,
    reason: str | None = None,
) -> LedgerTransaction:
    """Post one balanced transaction; return the existing one if the key was used.

    ``legs`` are ``(account, amount)`` pairs, at least two, summing to zero. Must
    run inside ``atomic()``; the caller checks permissions and audits.

    :raises ValueError: malformed legs or references (a programming error).
    :raises InsufficientPoints: a member balance would go below zero; nothing is posted.
    :raises Conflict: the key was used for another kind/member, or the delivery
        already earned for this member, or the reversed transaction is not reversible.
    """
    tx, _created = _post(
        kind=kind,
        legs=legs,
        idempotency_key=idempotency_key,
        actor=actor,
        member_id=member_id,
        community_id=community_id,
        delivery_id=delivery_id,
        redemption_id=redemption_id,
        reverses_id=reverses_id,
        minutes=minutes,
        policy_id=policy_id,
        reason=reason,
    )
    return tx


def _post(
    *,
    kind: TransactionKind | str,
    legs: Sequence[Leg],
    idempotency_key: str,
    actor: User | None,
    member_id: int | None,
    community_id: int | None,
    delivery_id: int | None,
    redemption_id: int | None,
    reverses_id: int | None,
    minutes: int | None,
    policy_id: int | None,
    reason: str | None,
) -> tuple[LedgerTransaction, bool]:
    """Post (see :func:`post_transaction`); return ``(transaction, created)``."""
    kind = TransactionKind(kind)
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 200:
        raise ValueError("idempotency_key must be a string of 1..200 characters")
    if reason is not None and len(reason) > MAX_REASON:
        raise ValueError(f"reason is longer than {MAX_REASON} characters")
    if (kind == TransactionKind.REVERSE) != (reverses_id is not None):
        raise ValueError("reverses_id is required for reversals and only for them")
    if minutes is not None and (isinstance(minutes, bool) or minutes < 0):
        raise ValueError("minutes must be a non-negative integer")
    member_id = _check_legs(kind, legs, member_id)
    if kind == TransactionKind.EARN and (
        delivery_id is None or minutes is None or member_id is None
    ):
        raise ValueError("an earn needs delivery_id, minutes and a member account leg")
    _require_write()

    last_id, last_hash = lock_head()
    existing = db.session.execute(
        sa.select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.kind != kind or existing.member_id != member_id:
            raise Conflict("This idempotency key was already used for another operation.")
        return _load_entries(existing), False

    counts_as_earn = kind == TransactionKind.EARN
    if kind == TransactionKind.EARN:
        dup = db.session.execute(
            sa.select(LedgerTransaction.id).where(
                LedgerTransaction.kind == TransactionKind.EARN,
                LedgerTransaction.delivery_id == delivery_id,
                LedgerTransaction.member_id == member_id,
            )
        ).first()
        if dup is not None:
            raise Conflict("This delivery has already earned points for this member.")
    if reverses_id is not None:
        target = db.session.execute(
            sa.select(LedgerTransaction.kind).where(LedgerTransaction.id == reverses_id)
        ).scalar_one_or_none()
        if target is None:
            raise ValueError(f"transaction {reverses_id} does not exist")
        if target not in REVERSIBLE_KINDS:
            raise Conflict("This kind of transaction cannot be reversed.")
        if _reversal_of(reverses_id) is not None:
            raise AlreadyReversed("This transaction has already been reversed.")
        counts_as_earn = target == TransactionKind.EARN

    created_at = utcnow()
    actor_id = actor.id if actor is not None else None
    ordered = sorted(legs, key=lambda leg: leg[0].id)
    with db.session.begin_nested():
        for account, amount in ordered:
            earned_delta = (
                amount if counts_as_earn and account.kind == AccountKind.MEMBER_AVAILABLE else 0
            )
            row = db.session.execute(
                _MOVE_BALANCE,
                {"account_id": account.id, "amount": amount, "earned_delta": earned_delta},
            ).one_or_none()
            if row is None:
                which = "held" if account.kind == AccountKind.MEMBER_HELD else "available"
                raise InsufficientPoints(
                    "Not enough points.", account_id=account.id, balance_kind=which
                )
            set_committed_value(account, "balance", row.balance)
            set_committed_value(account, "earned", row.earned)

        digest = hash_content(
            kind=kind.value,
            idempotency_key=idempotency_key,
            member_id=member_id,
            community_id=community_id,
            delivery_id=delivery_id,
            redemption_id=redemption_id,
            reverses_id=reverses_id,
            minutes=minutes,
            policy_id=policy_id,
            actor_id=actor_id,
            reason=reason,
            created_at=created_at,
            entries=[(a.id, amt) for a, amt in ordered],
            prev_hash=last_hash,
        )
        tx = LedgerTransaction(
            kind=kind,
            idempotency_key=idempotency_key,
            member_id=member_id,
            community_id=community_id,
            delivery_id=delivery_id,
            redemption_id=redemption_id,
            reverses_id=reverses_id,
            minutes=minutes,
            policy_id=policy_id,
            actor_id=actor_id,
            reason=reason,
            created_at=created_at,
            prev_hash=last_hash,
            hash=digest,
        )
        db.session.add(tx)
        db.session.flush()
        entries = [
            LedgerEntry(
                transaction_id=tx.id, account_id=account.id, amount=amount, created_at=created_at
            )
            for account, amount in ordered
        ]
        db.session.add_all(entries)
        db.session.flush()
        db.session.execute(_ADVANCE_HEAD, {"tx_id": tx.id, "digest": digest, "at": created_at})
        for entry, (account, _amount) in zip(entries, ordered, strict=True):
            set_committed_value(entry, "account", account)
        set_committed_value(tx, "entries", entries)
        _after_post(tx, ordered)
    _remember_head(tx.id, digest)
    return tx, True


#: The posting's write statements, built once with bound parameters (compiled once,
#: then served from SQLAlchemy's statement cache).
_MOVE_BALANCE = (
    _accounts.update()
    .where(
        _accounts.c.id == sa.bindparam("account_id"),
        sa.or_(
            _accounts.c.kind.not_in([k.value for k in MEMBER_KINDS]),
            _accounts.c.balance + sa.bindparam("amount", type_=sa.Integer()) >= 0,
        ),
    )
    .values(
        balance=_accounts.c.balance + sa.bindparam("amount", type_=sa.Integer()),
        earned=_accounts.c.earned + sa.bindparam("earned_delta", type_=sa.Integer()),
    )
    .returning(_accounts.c.balance, _accounts.c.earned)
)
_ADVANCE_HEAD = (
    _head.update()
    .where(_head.c.id == 1)
    .values(
        last_transaction_id=sa.bindparam("tx_id"),
        last_hash=sa.bindparam("digest"),
        transaction_count=_head.c.transaction_count + 1,
        updated_at=sa.bindparam("at", type_=_head.c.updated_at.type),
    )
)


def _after_post(tx: LedgerTransaction, legs: Sequence[Leg]) -> None:
    """Hook run after every posting, inside the same database transaction.

    The rankings feature maintains its rollups here (``services.rankings``, per member x
    area level x period, from ``tx.kind``, ``tx.member_id``, ``tx.community_id``,
    ``tx.created_at``, ``tx.minutes`` and the member-available leg; a reversal of
    an earn carries the original's ``minutes`` and negated amount). Code here runs
    after the head and account locks (lock order) and must only flush.
    """
    if tx.kind in (TransactionKind.EARN, TransactionKind.REVERSE):
        from . import rankings  # rankings reads the ledger's models only; no import cycle

        rankings.apply_posting(tx, legs)


def _reversal_of(tx_id: int) -> int | None:
    return db.session.execute(
        sa.select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == tx_id)
    ).scalar_one_or_none()


# --- operations --------------------------------------------------------------------------


def earn(
    actor: User | None,
    *,
    member_id: int,
    community_id: int,
    delivery_id: int,
    points: int,
    minutes: int,
    policy_id: int | None,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> LedgerTransaction | None:
    """Post a delivery's earn for one participant: issuance -> member available.

    Used by settlement, which computes ``points`` with ``points_policy.points_for``
    and audits/notifies. The default key ``earn:d<delivery>:u<member>`` makes a
    retried settlement return the first transaction. ``points == 0`` posts nothing
    and returns None (a zero-point participation lives in the delivery record only).

    :raises Conflict: the delivery already earned for this member under another key.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise ValueError(f"points must be a non-negative integer: {points!r}")
    if points == 0:
        return None
    lock_head()
    wallet = account_for_member(member_id)
    source = issuance_account(community_id)
    return post_transaction(
        kind=TransactionKind.EARN,
        legs=[(source, -points), (wallet, points)],
        idempotency_key=idempotency_key or f"earn:d{delivery_id}:u{member_id}",
        actor=actor,
        member_id=member_id,
        community_id=community_id,
        delivery_id=delivery_id,
        minutes=minutes,
        policy_id=policy_id,
        reason=reason,
    )


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed("A reason is required.", errors={"reason": ["Required."]})
    if len(text) > MAX_REASON:
        raise ValidationFailed(
            "The reason is too long.", errors={"reason": [f"At most {MAX_REASON} characters."]}
        )
    return text


def member_delta(tx: LedgerTransaction, kind: AccountKind = AccountKind.MEMBER_AVAILABLE) -> int:
    """Return how much ``tx`` changed its member's account of ``kind`` (entries loaded)."""
    return sum(e.amount for e in tx.entries if e.account.kind == kind)


def get_transaction(tx_id: int) -> LedgerTransaction:
    """Return a transaction or raise :class:`NotFound`."""
    tx = db.session.get(LedgerTransaction, tx_id)
    if tx is None:
        raise NotFound("Transaction not found.")
    return tx


def _load_entries(tx: LedgerTransaction) -> LedgerTransaction:
    rows = db.session.execute(
        sa.select(LedgerEntry, LedgerAccount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == tx.id)
        .order_by(LedgerEntry.id)
    ).all()
    for entry, account in rows:
        set_committed_value(entry, "account", account)
    set_committed_value(tx, "entries", [entry for entry, _a in rows])
    return tx


def reverse(
    actor: User | None,
    tx: LedgerTransaction,
    reason: str,
    *,
    idempotency_key: str | None = None,
) -> LedgerTransaction:
    """Post the negated legs of ``tx`` (an earn, adjust or expire) with a reason.

    Audited, and the member is notified. ``actor=None`` is the CLI/system.

    :raises Forbidden: the actor is not the secretary of the transaction's community.
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
        permissions.require(actor, "ledger.reverse", community)
    if tx.kind == TransactionKind.REVERSE:
        raise Conflict("A reversal cannot itself be reversed.")
    if tx.kind not in REVERSIBLE_KINDS:
        raise Conflict("Holds and redemptions are undone through the redemption, not reversed.")
    lock_head()
    if _reversal_of(tx.id) is not None:
        raise AlreadyReversed("This transaction has already been reversed.")
    _load_entries(tx)
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
    lock_head()
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


# --- reading -----------------------------------------------------------------------------


def balances(user: User | int) -> dict[str, int]:
    """Return ``{available, held, earned_total}`` from the cached balances (0 if none)."""
    user_id = user if isinstance(user, int) else user.id
    out = {"available": 0, "held": 0, "earned_total": 0}
    rows = db.session.execute(
        sa.select(_accounts.c.kind, _accounts.c.balance, _accounts.c.earned).where(
            _accounts.c.user_id == user_id
        )
    ).all()
    for kind, balance, earned in rows:
        if kind == AccountKind.MEMBER_AVAILABLE.value:
            out["available"] = int(balance)
            out["earned_total"] = int(earned)
        elif kind == AccountKind.MEMBER_HELD.value:
            out["held"] = int(balance)
    return out


def present_transactions(txs: Sequence[LedgerTransaction]) -> list[dict[str, Any]]:
    """Return transactions as dicts with their entries, member deltas and reversal link."""
    ids = [t.id for t in txs]
    if not ids:
        return []
    entries: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = db.session.execute(
        sa.select(
            LedgerEntry.id,
            LedgerEntry.transaction_id,
            LedgerEntry.account_id,
            LedgerEntry.amount,
            LedgerAccount.kind,
            LedgerAccount.user_id,
            LedgerAccount.community_id,
        )
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id.in_(ids))
        .order_by(LedgerEntry.id)
    ).all()
    for r in rows:
        entries[r.transaction_id].append(
            {
                "id": r.id,
                "account_id": r.account_id,
                "account_kind": AccountKind(r.kind).value,
                "user_id": r.user_id,
                "community_id": r.community_id,
                "amount": int(r.amount),
            }
        )
    reversed_by = dict(
        db.session.execute(
            sa.select(LedgerTransaction.reverses_id, LedgerTransaction.id).where(
                LedgerTransaction.reverses_id.in_(ids)
            )
        ).all()
    )
    out = []
    for t in txs:
        legs = entries.get(t.id, [])
        out.append(
            {
                "id": t.id,
                "kind": t.kind.value,
                "member_id": t.member_id,
                "community_id": t.community_id,
                "delivery_id": t.delivery_id,
                "redemption_id": t.redemption_id,
                "reverses_id": t.reverses_id,
                "reversed_by_id": reversed_by.get(t.id),
                "minutes": t.minutes,
                "policy_id": t.policy_id,
                "actor_id": t.actor_id,
                "reason": t.reason,
                "created_at": t.created_at,
                "hash": t.hash,
                "available_change": sum(
                    e["amount"]
                    for e in legs
                    if e["account_kind"] == AccountKind.MEMBER_AVAILABLE.value
                ),
                "held_change": sum(
                    e["amount"] for e in legs if e["account_kind"] == AccountKind.MEMBER_HELD.value
                ),
                "entries": legs,
            }
        )
    return out


def history(user: User | int, page: int = 1, per_page: int = 20) -> dict[str, Any]:
    """Return one page of the member's transactions, newest first, with entries.

    ``{items, page, per_page, total}``; items as :func:`present_transactions`.
    """
    user_id = user if isinstance(user, int) else user.id
    page = max(1, int(page))
    per_page = max(1, min(int(per_page), 100))
    base = sa.select(LedgerTransaction).where(LedgerTransaction.member_id == user_id)
    total = db.session.execute(
        sa.select(sa.func.count()).where(LedgerTransaction.member_id == user_id)
    ).scalar_one()
    txs = list(
        db.session.execute(
            base.order_by(LedgerTransaction.id.desc()).limit(per_page).offset((page - 1) * per_page)
        ).scalars()
    )
    return {"items": present_transactions(txs), "page": page, "per_page": per_page, "total": total}


def earned_by_month(
    user: User | int, months: int = 12, tz: str = DEFAULT_TIMEZONE, *, now: datetime | None = None
) -> list[tuple[str, int]]:
    """Return ``[("2026-01", points), ...]``: points earned (earn - reversed earn) per
    local month over the last ``months`` months, oldest first, zeros included."""
    user_id = user if isinstance(user, int) else user.id
    local_zone = zone(tz)
    local_now = (now or utcnow()).astimezone(local_zone)
    labels: list[str] = []
    year, month = local_now.year, local_now.month
    for _ in range(months):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    labels.reverse()
    first_year, first_month = (int(p) for p in labels[0].split("-"))
    start = datetime(first_year, first_month, 1, tzinfo=local_zone)
    original = aliased(LedgerTransaction)
    rows = db.session.execute(
        sa.select(LedgerTransaction.created_at, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .outerjoin(original, original.id == LedgerTransaction.reverses_id)
        .where(
            LedgerTransaction.member_id == user_id,
            LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE,
            LedgerTransaction.created_at >= start,
            sa.or_(
                LedgerTransaction.kind == TransactionKind.EARN,
                sa.and_(
                    LedgerTransaction.kind == TransactionKind.REVERSE,
                    original.kind == TransactionKind.EARN,
                ),
            ),
        )
    ).all()
    totals = dict.fromkeys(labels, 0)
    for created_at, amount in rows:
        label = created_at.astimezone(local_zone).strftime("%Y-%m")
        if label in totals:
            totals[label] += int(amount)
    return [(label, totals[label]) for label in labels]


def member_overview_stmt(actor: User) -> sa.Select[Any]:
    """Return a SELECT of ``(User, available, held, earned)`` for the members the actor
    (secretary or officer) oversees, ordered by display name."""
    areas = permissions.grant_areas(actor, [Role.SECRETARY, Role.OFFICER])
    if not areas:
        raise Forbidden("You are not allowed to do this.", action="ledger.members")
    in_scope = (
        sa.select(RoleGrant.user_id)
        .join(Area, Area.id == RoleGrant.area_id)
        .where(
            RoleGrant.revoked_at.is_(None),
            RoleGrant.role == Role.MEMBER,
            sa.or_(*[Area.path.startswith(a.path, autoescape=True) for a in areas]),
        )
    )
    wallet = aliased(LedgerAccount)
    held = aliased(LedgerAccount)
    return (
        sa.select(
            User,
            sa.func.coalesce(wallet.balance, 0).label("available"),
            sa.func.coalesce(held.balance, 0).label("held"),
            sa.func.coalesce(wallet.earned, 0).label("earned"),
        )
        .outerjoin(
            wallet,
            sa.and_(wallet.user_id == User.id, wallet.kind == AccountKind.MEMBER_AVAILABLE),
        )
        .outerjoin(held, sa.and_(held.user_id == User.id, held.kind == AccountKind.MEMBER_HELD))
        .where(User.id.in_(in_scope))
        .order_by(User.display_name, User.id)
    )
