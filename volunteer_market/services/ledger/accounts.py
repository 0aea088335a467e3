"""Ledger accounts: one per owner, created race-safely on first use.

A member has an available account (the wallet) and a held account (pending
redemptions); a community has an issuance account, a redemption sink, an expiry
sink and an adjustment account. Creation is race-safe by itself (``owner_key`` is
UNIQUE: ``INSERT .. ON CONFLICT DO NOTHING`` then read), so the helpers take no head
lock; callers that post take the head of their chain first (lock order). A member's
accounts are shared by every community: a transaction that posts for several members
locks their wallets first, ascending (:func:`lock_member_accounts`).
"""

from __future__ import annotations

import sqlalchemy as sa

from ...extensions import db
from ...models import MEMBER_KINDS, AccountKind, LedgerAccount, utcnow
from ...models.ledger import owner_key
from .head import dialect_insert, require_write

#: One leg of a posting: ``(account, amount)``.
Leg = tuple[LedgerAccount, int]

COMMUNITY_ACCOUNT_KINDS = frozenset(
    {
        AccountKind.ISSUANCE,
        AccountKind.REDEMPTION_SINK,
        AccountKind.EXPIRY_SINK,
        AccountKind.ADJUSTMENT,
    }
)


def _account(kind: AccountKind, user_id: int | None, community_id: int | None) -> LedgerAccount:
    """Return the account of this owner, creating it race-safely."""
    require_write()
    key = owner_key(kind, user_id, community_id)
    stmt = (
        sa.select(LedgerAccount)
        .where(LedgerAccount.owner_key == key)
        .execution_options(populate_existing=True)
    )
    account = db.session.execute(stmt).scalar_one_or_none()
    if account is None:
        db.session.execute(
            dialect_insert(LedgerAccount)
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


def lock_member_accounts(user_ids: list[int]) -> dict[int, LedgerAccount]:
    """Lock the existing wallets (available accounts) of ``user_ids`` in ascending
    account id order -- for a transaction that posts for several members (a
    settlement), so two such transactions of different communities sharing members
    cannot lock their accounts in opposite orders. Taken after the heads.

    A wallet that does not exist yet is created later by the posting (and so locked
    by its creator: a second creator waits on the UNIQUE ``owner_key``); callers post
    for their members in ascending user id, so first-time members are created in one
    order too.

    Return the locked wallets by user id, read fresh (a posting can use them as its
    legs without reading them again)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    wallets = db.session.execute(
        sa.select(LedgerAccount)
        .where(LedgerAccount.user_id.in_(ids), LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE)
        .order_by(LedgerAccount.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    return {wallet.user_id: wallet for wallet in wallets if wallet.user_id is not None}
