"""Reading the ledger: balances, a member's history, presentation, monthly earnings,
and the overview statement of the members a secretary or officer oversees.

Balances come from the cached ``balance``/``earned`` of the accounts (kept exact by
posting); history and presentation read transactions and entries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import (
    AccountKind,
    Area,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Role,
    RoleGrant,
    TransactionKind,
    User,
    utcnow,
)
from ...zones import DEFAULT_TIMEZONE, zone
from .. import permissions
from ..errors import Forbidden, NotFound

_accounts = cast(sa.Table, LedgerAccount.__table__)


def member_delta(tx: LedgerTransaction, kind: AccountKind = AccountKind.MEMBER_AVAILABLE) -> int:
    """Return how much ``tx`` changed its member's account of ``kind`` (entries loaded)."""
    return sum(e.amount for e in tx.entries if e.account.kind == kind)


def get_transaction(tx_id: int) -> LedgerTransaction:
    """Return a transaction or raise :class:`NotFound`."""
    tx = db.session.get(LedgerTransaction, tx_id)
    if tx is None:
        raise NotFound("Transaction not found.")
    return tx


#: Built once with a bound parameter: ``GET /api/v1/me`` reads it on every call.
_BALANCES = sa.select(_accounts.c.kind, _accounts.c.balance, _accounts.c.earned).where(
    _accounts.c.user_id == sa.bindparam("user_id")
)


def balances(user: User | int) -> dict[str, int]:
    """Return ``{available, held, earned_total}`` from the cached balances (0 if none)."""
    user_id = user if isinstance(user, int) else user.id
    out = {"available": 0, "held": 0, "earned_total": 0}
    rows = db.session.execute(_BALANCES, {"user_id": user_id}).all()
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


def member_overview_stmt(actor: User) -> sa.Select[User, int, int, int]:
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
