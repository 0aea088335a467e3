"""Write a legacy single chain (hash v1, ``chain_key`` NULL, ``ledger_head`` at its
end) as the code before the per-community chains did, with Core statements that name
only the columns of that schema -- so it also runs on a database migrated only up to
the revision before the chains (``tests/test_migrations.py``)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import GENESIS_HASH, AccountKind, TransactionKind, utcnow
from volunteer_market.models.ledger import owner_key
from volunteer_market.services.ledger.hashing import hash_content


def _account(conn: sa.Connection, kind: AccountKind, user_id, community_id, balance: int) -> int:
    acc = db.metadata.tables["ledger_accounts"]
    key = owner_key(kind, user_id, community_id)
    found = conn.execute(sa.select(acc.c.id).where(acc.c.owner_key == key)).scalar_one_or_none()
    if found is not None:
        conn.execute(acc.update().where(acc.c.id == found).values(balance=acc.c.balance + balance))
        return int(found)
    return int(
        conn.execute(
            acc.insert()
            .values(
                kind=kind,
                user_id=user_id,
                community_id=community_id,
                owner_key=key,
                balance=balance,
                earned=0,
                created_at=utcnow(),
            )
            .returning(acc.c.id)
        ).scalar_one()
    )


def insert_legacy_chain(
    conn: sa.Connection, *, user_id: int, community_id: int, amounts: list[int]
) -> list[tuple[int, str]]:
    """Post ``amounts`` as legacy adjustments (adjustment account -> the member's
    wallet) in one v1 chain from ``GENESIS_HASH``; set ``ledger_head`` to its end.
    Return ``[(id, hash)]``."""
    tx = db.metadata.tables["ledger_transactions"]
    ent = db.metadata.tables["ledger_entries"]
    head = db.metadata.tables["ledger_head"]
    wallet = _account(conn, AccountKind.MEMBER_AVAILABLE, user_id, None, sum(amounts))
    counter = _account(conn, AccountKind.ADJUSTMENT, None, community_id, -sum(amounts))
    prev = GENESIS_HASH
    start = utcnow()
    out: list[tuple[int, str]] = []
    for i, amount in enumerate(amounts):
        content = {
            "kind": TransactionKind.ADJUST.value,
            "idempotency_key": f"legacy:{community_id}:{i}",
            "member_id": user_id,
            "community_id": community_id,
            "delivery_id": None,
            "redemption_id": None,
            "reverses_id": None,
            "minutes": None,
            "policy_id": None,
            "actor_id": None,
            "reason": "旧账",
            "created_at": start + timedelta(milliseconds=i),
        }
        legs = sorted([(counter, -amount), (wallet, amount)])
        digest = hash_content(**content, entries=legs, prev_hash=prev)
        tx_id = conn.execute(
            tx.insert().values(**content, prev_hash=prev, hash=digest).returning(tx.c.id)
        ).scalar_one()
        conn.execute(
            ent.insert(),
            [
                {"transaction_id": tx_id, "account_id": a, "amount": m, "created_at": start}
                for a, m in legs
            ],
        )
        out.append((int(tx_id), digest))
        prev = digest
    conn.execute(head.delete())
    conn.execute(
        head.insert().values(
            id=1,
            last_transaction_id=out[-1][0],
            last_hash=prev,
            transaction_count=len(out),
            updated_at=start,
        )
    )
    return out
