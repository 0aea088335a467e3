"""Posting: the one code path that inserts ledger transactions and entries.

:func:`post_transaction` (and :func:`earn`, and the corrections) go through
:func:`_post`, whose named steps run in this order, inside the caller's
``atomic()``: validate the arguments; lock the head of the transaction's chain; replay a used idempotency key;
refuse a second earn of a delivery or a bad reversal (one read for both); then move
each leg's balance with a guarded UPDATE (in a savepoint only when a refusal could
come after a moved leg: :func:`_savepoint_if_refusable`), insert the transaction
(with its hash, ``RETURNING id``) and all its entries (one multi-row INSERT) with
Core, advance the head, and run the posting hook (:func:`_after_post`, the ranking
rollups). No ORM flush writes ledger rows. See the package overview for the lock order.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from ...extensions import db
from ...models import (
    MEMBER_KINDS,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
    User,
    chain_key_of,
    utcnow,
)
from ...models.ledger import MAX_REASON
from ..errors import AlreadyReversed, Conflict, InsufficientPoints
from ..rankings import annual
from ..rankings.rollups import apply_posting, pending_mark, pending_reset
from .accounts import Leg, account_for_member, issuance_account
from .hashing import hash_content
from .head import advance_head, lock_head, remember_head, require_write

#: Kinds that :func:`reverse` corrects; holds and redemptions are undone through the
#: redemption (release), never by reversal.
REVERSIBLE_KINDS = frozenset({TransactionKind.EARN, TransactionKind.ADJUST, TransactionKind.EXPIRE})

_accounts = cast(sa.Table, LedgerAccount.__table__)


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


@dataclass(frozen=True)
class _Content:
    """What a new transaction records (everything its hash covers but entries and
    ``prev_hash``)."""

    kind: TransactionKind
    idempotency_key: str
    member_id: int | None
    community_id: int | None
    delivery_id: int | None
    redemption_id: int | None
    reverses_id: int | None
    minutes: int | None
    policy_id: int | None
    actor_id: int | None
    reason: str | None
    created_at: datetime

    @property
    def chain_key(self) -> int:
        return chain_key_of(self.community_id)

    def digest(self, ordered: Sequence[Leg], prev_hash: str) -> str:
        """The transaction's hash over this content, its legs and ``prev_hash``."""
        return hash_content(
            kind=self.kind.value,
            idempotency_key=self.idempotency_key,
            member_id=self.member_id,
            community_id=self.community_id,
            delivery_id=self.delivery_id,
            redemption_id=self.redemption_id,
            reverses_id=self.reverses_id,
            minutes=self.minutes,
            policy_id=self.policy_id,
            actor_id=self.actor_id,
            reason=self.reason,
            created_at=self.created_at,
            entries=[(a.id, amt) for a, amt in ordered],
            prev_hash=prev_hash,
            chain_key=self.chain_key,
        )


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
    member_id = _validated(
        kind,
        legs,
        idempotency_key=idempotency_key,
        member_id=member_id,
        delivery_id=delivery_id,
        reverses_id=reverses_id,
        minutes=minutes,
        reason=reason,
    )

    _last_id, last_hash = lock_head(community_id)
    existing = _replay(kind, idempotency_key, member_id, delivery_id)
    if existing is not None:
        return existing, False

    counts_as_earn = kind == TransactionKind.EARN
    if reverses_id is not None:
        counts_as_earn = _reversed_kind(reverses_id) == TransactionKind.EARN

    content = _Content(
        kind=kind,
        idempotency_key=idempotency_key,
        member_id=member_id,
        community_id=community_id,
        delivery_id=delivery_id,
        redemption_id=redemption_id,
        reverses_id=reverses_id,
        minutes=minutes,
        policy_id=policy_id,
        actor_id=actor.id if actor is not None else None,
        reason=reason,
        created_at=utcnow(),
    )
    ordered = sorted(legs, key=lambda leg: leg[0].id)
    mark = pending_mark()
    try:
        with _savepoint_if_refusable(ordered):
            _move_balances(ordered, counts_as_earn)
            digest = content.digest(ordered, last_hash)
            tx, entries = _insert_rows(content, ordered, last_hash, digest)
            advance_head(content.chain_key, tx.id, digest, content.created_at)
            _attach(tx, entries, ordered)
            _after_post(tx, ordered)
    except BaseException:
        pending_reset(mark)  # the savepoint's deferred bucket moves go with it
        raise
    remember_head(content.chain_key, tx.id, digest)
    return tx, True


def _savepoint_if_refusable(ordered: Sequence[Leg]) -> AbstractContextManager[Any]:
    """A savepoint around the posting's writes when a guarded balance UPDATE can refuse
    it after an earlier leg has moved; else nothing (two statements fewer).

    Only a negative leg on a member account can be refused (:class:`InsufficientPoints`),
    and a caller may catch that and go on in the same transaction (``expire_hold``
    wraps its own savepoint; the savepoint here makes "nothing of it stays" true for
    every caller). When the first leg in id order is the only one that can be refused,
    a refusal has moved nothing yet. Any other error of these statements is a broken
    invariant or a programming error, and the whole transaction rolls back.
    """
    refusable = [
        i
        for i, (account, amount) in enumerate(ordered)
        if amount < 0 and account.kind in MEMBER_KINDS
    ]
    if not refusable or refusable == [0]:
        return nullcontext()
    return db.session.begin_nested()


def _validated(
    kind: TransactionKind,
    legs: Sequence[Leg],
    *,
    idempotency_key: str,
    member_id: int | None,
    delivery_id: int | None,
    reverses_id: int | None,
    minutes: int | None,
    reason: str | None,
) -> int | None:
    """Refuse malformed arguments (ValueError, a programming error); return the member id."""
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
    require_write()
    return member_id


def _replay(
    kind: TransactionKind, idempotency_key: str, member_id: int | None, delivery_id: int | None
) -> LedgerTransaction | None:
    """Return the transaction already posted under this key (entries loaded), or None.

    For an earn the same statement also finds an earn of the delivery for this member
    under another key, which is refused (409): one read for both checks.
    """
    found = sa.or_(LedgerTransaction.idempotency_key == idempotency_key)
    if kind == TransactionKind.EARN:
        found = sa.or_(
            found,
            sa.and_(
                # a literal, so PostgreSQL's generic plan can use the partial index
                # ``uq_ledger_transactions_earn_once`` (WHERE kind = 'earn') too
                LedgerTransaction.kind == sa.literal_column(f"'{TransactionKind.EARN.value}'"),
                LedgerTransaction.delivery_id == delivery_id,
                LedgerTransaction.member_id == member_id,
            ),
        )
    rows = db.session.execute(sa.select(LedgerTransaction).where(found)).scalars().all()
    existing = next((tx for tx in rows if tx.idempotency_key == idempotency_key), None)
    if existing is None:
        if rows:
            raise Conflict("This delivery has already earned points for this member.")
        return None
    if existing.kind != kind or existing.member_id != member_id:
        raise Conflict("This idempotency key was already used for another operation.")
    return load_entries(existing)


def _reversed_kind(reverses_id: int) -> TransactionKind:
    """Return the kind of the transaction to reverse, refusing one that cannot be."""
    target = db.session.execute(
        sa.select(LedgerTransaction.kind).where(LedgerTransaction.id == reverses_id)
    ).scalar_one_or_none()
    if target is None:
        raise ValueError(f"transaction {reverses_id} does not exist")
    if target not in REVERSIBLE_KINDS:
        raise Conflict("This kind of transaction cannot be reversed.")
    if reversal_of(reverses_id) is not None:
        raise AlreadyReversed("This transaction has already been reversed.")
    return target


def _move_balances(ordered: Sequence[Leg], counts_as_earn: bool) -> None:
    """Apply each leg with the guarded UPDATE; InsufficientPoints if a member's would go < 0."""
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


def _insert_rows(
    content: _Content, ordered: Sequence[Leg], prev_hash: str, digest: str
) -> tuple[LedgerTransaction, list[LedgerEntry]]:
    """Insert the transaction (``RETURNING id``) and all its entries (one multi-row
    ``INSERT``) with Core, no ORM flush; return them as persistent ORM objects.

    The objects are built from the values written and put in the session as already
    persistent (``make_transient_to_detached`` + ``add``), so the session knows them
    and never inserts them a second time. Each entry's id is matched by its account
    (an account appears once per transaction: ``_check_legs`` and a UNIQUE).
    """
    values = {
        "kind": content.kind,
        "idempotency_key": content.idempotency_key,
        "member_id": content.member_id,
        "community_id": content.community_id,
        "delivery_id": content.delivery_id,
        "redemption_id": content.redemption_id,
        "reverses_id": content.reverses_id,
        "minutes": content.minutes,
        "policy_id": content.policy_id,
        "actor_id": content.actor_id,
        "reason": content.reason,
        "created_at": content.created_at,
        "chain_key": content.chain_key,
        "prev_hash": prev_hash,
        "hash": digest,
    }
    tx_id = db.session.execute(_INSERT_TRANSACTION, values).scalar_one()
    legs = [
        {
            "transaction_id": tx_id,
            "account_id": account.id,
            "amount": amount,
            "created_at": content.created_at,
        }
        for account, amount in ordered
    ]
    ids = {row.account_id: row.id for row in db.session.execute(_INSERT_ENTRIES, legs)}
    tx = _persistent(LedgerTransaction(id=tx_id, **values))
    entries = [_persistent(LedgerEntry(id=ids[leg["account_id"]], **leg)) for leg in legs]
    return tx, entries


_T = TypeVar("_T")


def _persistent(obj: _T) -> _T:
    """Put ``obj``, whose row was just inserted with Core, in the session as persistent."""
    make_transient_to_detached(obj)
    db.session.add(obj)
    return obj


_transactions = cast(sa.Table, LedgerTransaction.__table__)
_entries = cast(sa.Table, LedgerEntry.__table__)
_INSERT_TRANSACTION = _transactions.insert().returning(_transactions.c.id)
_INSERT_ENTRIES = _entries.insert().returning(_entries.c.id, _entries.c.account_id)


def _attach(tx: LedgerTransaction, entries: list[LedgerEntry], ordered: Sequence[Leg]) -> None:
    """Set the loaded entries (and their accounts) on the transaction without a query."""
    for entry, (account, _amount) in zip(entries, ordered, strict=True):
        set_committed_value(entry, "account", account)
    set_committed_value(tx, "entries", entries)


#: The posting's balance statement, built once with bound parameters (compiled once,
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


def _after_post(tx: LedgerTransaction, legs: Sequence[Leg]) -> None:
    """Hook run after every posting, inside the same database transaction.

    The rankings feature maintains its rollups here (``services.rankings.rollups``, per
    member x area level x period, from ``tx.kind``, ``tx.member_id``,
    ``tx.community_id``, ``tx.created_at``, ``tx.minutes`` and the member-available
    leg; a reversal of an earn carries the original's ``minutes`` and negated amount),
    and the annual report's rollups (``services.rankings.annual``: deliveries, ratings,
    points spent and expired per community, year and member).
    Code here runs after the head and account locks (lock order) and must only flush;
    the score buckets, shared by members of several communities, are deferred to the
    commit and written there in key order (``rollups.flush_pending``).
    ``rankings.rollups`` imports nothing of the ledger package, so this is no cycle.
    """
    if tx.kind in (TransactionKind.EARN, TransactionKind.REVERSE):
        apply_posting(tx, legs)
    if tx.kind in _ANNUAL_KINDS:
        annual.apply_posting(tx, legs)


#: Kinds the annual report's rollups count (``services.rankings.annual``).
_ANNUAL_KINDS = frozenset(
    {TransactionKind.EARN, TransactionKind.REVERSE, TransactionKind.REDEEM, TransactionKind.EXPIRE}
)


def reversal_of(tx_id: int) -> int | None:
    """Return the id of the transaction reversing ``tx_id``, or None."""
    return db.session.execute(
        sa.select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == tx_id)
    ).scalar_one_or_none()


def load_entries(tx: LedgerTransaction) -> LedgerTransaction:
    """Load ``tx``'s entries and their accounts in one query (set without lazy loads)."""
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
    wallet: LedgerAccount | None = None,
    source: LedgerAccount | None = None,
) -> LedgerTransaction | None:
    """Post a delivery's earn for one participant: issuance -> member available.

    ``wallet`` and ``source``: the member's available account (locked by the caller,
    :func:`~.accounts.lock_member_accounts`) and the community's issuance account, if
    the caller has them; else they are read (created on first use) here.

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
    lock_head(community_id)
    if wallet is None:
        wallet = account_for_member(member_id)
    elif wallet.user_id != member_id or wallet.kind != AccountKind.MEMBER_AVAILABLE:
        raise ValueError("wallet is not the member's available account")
    if source is None:
        source = issuance_account(community_id)
    elif source.community_id != community_id or source.kind != AccountKind.ISSUANCE:
        raise ValueError("source is not the community's issuance account")
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
