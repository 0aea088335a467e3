"""Wallet expiry (积分过期) by the points policy; the service record is never touched.

The rule
--------
Where a community's policy says ``end_of_next_year``, points credited to the wallet
in year Y may be spent until 31 December of Y+1 (the community's local time);
whatever is left of them then expires. Spending is first-in first-out: a hold takes
the oldest points first.

For a run on local date A, the cutoff is ``S = 1 January of A.year - 1``: points
credited before S (in A.year - 2 or earlier) are past their deadline. With

* ``fresh`` = wallet credits since S: the positive wallet legs of earn, adjust and
  reversal transactions (not ``release``: a released hold returns points that were
  already counted when they came in),
* ``kept``  = wallet credits before S that came from communities whose policy never
  expires,

the amount that expires is ``max(0, available - fresh - kept)``. Because spending is
FIFO, what remains in the wallet are the newest credits; anything beyond the
credits since S (and the protected ones) is older than S. It is never more than the
available balance, and held points are never touched: if a hold of old points is
released later, a later run expires them.

Example: 100 earned in 2025, 30 spent in 2025, 50 earned and 40 spent in 2026.
Run on 2027-01-01: S = 2026-01-01, available 80, fresh 50 -> 30 expire (the brief's
``earned in Y - spent since the start of Y`` = 100 - 70, the same thing).

Posting: one ``expire`` transaction (available -> the community's expiry sink) per
member per round, key ``expire:<member>:<Y>`` with Y = A.year - 2, so re-runs and
concurrent runs post once (the key is checked after the chain head and wallet locks). The
transaction goes to the lowest-id community with an expiring policy from which the
member received credits. ``earned`` moves only with earns and their reversals, so
the service record is never lowered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import (
    AccountKind,
    Area,
    ExpiryRule,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
    User,
    utcnow,
)
from ..zones import area_zone, local_today
from . import audit, ledger, points_policy


@dataclass(frozen=True)
class ExpiryPlan:
    """What a run would expire for one member."""

    member_id: int
    community_id: int
    #: Points credited in this year or earlier expire.
    year: int
    cutoff: datetime
    available: int
    fresh: int
    kept: int
    amount: int

    @property
    def idempotency_key(self) -> str:
        return f"expire:{self.member_id}:{self.year}"


def _credit_rows(member_id: int) -> list[Any]:
    """Return ``(community_id, created_at, amount)`` of the member's wallet credits."""
    return list(
        db.session.execute(
            sa.select(
                LedgerTransaction.community_id, LedgerTransaction.created_at, LedgerEntry.amount
            )
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerAccount.user_id == member_id,
                LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE,
                LedgerEntry.amount > 0,
                LedgerTransaction.kind != TransactionKind.RELEASE,
            )
        )
    )


def _expiring(community_id: int | None, cache: dict[int | None, bool]) -> bool:
    if community_id not in cache:
        policy = points_policy.current_policy(community_id)
        cache[community_id] = policy.expiry_rule == ExpiryRule.END_OF_NEXT_YEAR
    return cache[community_id]


def _available(member_id: int) -> int:
    return ledger.balances(member_id)["available"]


def plan_expiry(
    member_id: int, as_of: date, *, cutoff_year: int | None = None
) -> ExpiryPlan | None:
    """Return what expires for ``member_id`` on local date ``as_of`` (None if the
    member has no credits from a community whose policy expires points).

    ``cutoff_year`` (default ``as_of.year - 1``): credits before 1 January of it
    are past their deadline.
    """
    rows = _credit_rows(member_id)
    cache: dict[int | None, bool] = {}
    expiring = sorted({c for c, _t, _a in rows if c is not None and _expiring(c, cache)})
    if not expiring:
        return None
    community_id = expiring[0]
    area = db.session.get(Area, community_id)
    zone = area_zone(area)
    year_start = cutoff_year if cutoff_year is not None else as_of.year - 1
    cutoff = datetime(year_start, 1, 1, tzinfo=zone)
    fresh = sum(int(a) for _c, t, a in rows if t >= cutoff)
    kept = sum(int(a) for c, t, a in rows if t < cutoff and not _expiring(c, cache))
    available = _available(member_id)
    amount = max(0, available - fresh - kept)
    return ExpiryPlan(
        member_id=member_id,
        community_id=community_id,
        year=year_start - 1,
        cutoff=cutoff,
        available=available,
        fresh=fresh,
        kept=kept,
        amount=amount,
    )


def candidates() -> list[int]:
    """Return the ids of members with a positive wallet (the only ones that can expire)."""
    return list(
        db.session.scalars(
            sa.select(LedgerAccount.user_id)
            .where(LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE, LedgerAccount.balance > 0)
            .order_by(LedgerAccount.user_id)
        )
    )


def expire_member(member_id: int, as_of: date) -> LedgerTransaction | None:
    """Post the member's expiry for ``as_of`` (the system; inside ``atomic()``).

    Returns the new transaction, or None when nothing expires or this round was
    already posted (idempotent: the key is checked after the locks).

    Locks: the head of the expiry's community chain (where it posts), then the
    member's wallet, and the plan is made again under them -- the wallet lock keeps
    every posting of the member (any community) out, so the plan is exact. If a
    concurrent credit moved the expiry to another community meanwhile, nothing is
    posted now (the next run posts it; taking a second head after the wallet would
    break the lock order).
    """
    first = plan_expiry(member_id, as_of)
    if first is None or first.amount <= 0:
        return None
    ledger.lock_head(first.community_id)
    ledger.lock_member_accounts([member_id])
    plan = plan_expiry(member_id, as_of)
    if plan is None or plan.amount <= 0 or plan.community_id != first.community_id:
        return None
    done = db.session.execute(
        sa.select(LedgerTransaction.id).where(
            LedgerTransaction.idempotency_key == plan.idempotency_key
        )
    ).first()
    if done is not None:
        return None
    wallet = ledger.account_for_member(member_id, AccountKind.MEMBER_AVAILABLE)
    sink = ledger.sink_account(AccountKind.EXPIRY_SINK, plan.community_id)
    reason = f"{plan.year} 年及以前获得的积分已于 {plan.year + 1} 年 12 月 31 日到期"
    tx = ledger.post_transaction(
        kind=TransactionKind.EXPIRE,
        legs=[(wallet, -plan.amount), (sink, plan.amount)],
        idempotency_key=plan.idempotency_key,
        actor=None,
        member_id=member_id,
        community_id=plan.community_id,
        reason=reason,
    )
    audit.record(
        None,
        "points.expire",
        "ledger_transaction",
        tx.id,
        area_id=plan.community_id,
        detail={"member_id": member_id, "amount": plan.amount, "year": plan.year},
    )
    audit.notify(
        member_id,
        "points.expired",
        object_type="ledger_transaction",
        object_id=tx.id,
        params={"amount": plan.amount, "year": plan.year},
    )
    return tx


def expire_wallets(as_of: date) -> list[LedgerTransaction]:
    """Expire every member's overdue points inside the current transaction.

    The CLI runs :func:`expire_member` in one transaction per member instead. A batch
    posts in several communities' chains for several members in one transaction, so it
    takes every chain head first (``lock_all_heads``).
    """
    ledger.lock_all_heads()
    out = []
    for member_id in candidates():
        tx = expire_member(member_id, as_of)
        if tx is not None:
            out.append(tx)
    return out


def expiring_soon(user: User | int, today: date | None = None) -> dict[str, Any] | None:
    """Return ``{amount, expires_on}``: wallet points that expire at the end of this
    year (including any overdue ones not yet expired), or None where nothing expires."""
    member_id = user if isinstance(user, int) else user.id
    today = today or local_today(utcnow())
    plan = plan_expiry(member_id, today, cutoff_year=today.year)
    if plan is None:
        return None
    return {"amount": plan.amount, "expires_on": date(today.year, 12, 31)}
