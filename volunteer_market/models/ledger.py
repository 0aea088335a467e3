"""The double-entry points ledger (积分账本): accounts, transactions, entries, head.

Only the package ``services/ledger/`` writes these tables; its ``__init__`` docstring
is the design overview. What the database itself guarantees, on SQLite and PostgreSQL:

* ``ledger_entries`` and ``ledger_transactions`` are append-only: triggers
  (:func:`ledger_trigger_ddl`) refuse every UPDATE and DELETE;
* an entry's amount is never 0; a member's available and held balances are never
  negative (CHECK); the service record (``earned``) lives on the available account;
* one account per owner (``owner_key`` UNIQUE), one transaction per idempotency
  key, at most one reversal per transaction (``reverses_id`` UNIQUE), and at most
  one earn per (delivery, member) (partial UNIQUE index);
* ``ledger_chain_heads`` has one row per hash chain (``chain_key`` = the
  transaction's community, 0 for a transaction without one) holding that chain's
  last transaction id and hash: a posting locks the head of its own chain only, so
  each chain is linear and postings of different communities do not wait on each
  other;
* ``ledger_head`` (a single row, ``id = 1``) is the end of the *legacy* chain: the
  one chain over every transaction posted before the per-community chains
  (``chain_key IS NULL``). It is no longer advanced; every chain's genesis hash is
  derived from its ``last_hash`` (:func:`chain_genesis`), and whole-ledger
  operations lock it first (the chain registry lock, see ``services/ledger/head.py``);
* ``ledger_anchors`` is a linear chain of snapshots of every chain head
  (``flask ledger anchor``); ``ledger verify`` checks each against the transactions
  it names. Append-only like the transactions.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import DDL, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .types import UTCDateTime, str_enum, utcnow

#: ``prev_hash`` of the very first transaction (of the legacy chain; of the anchors).
GENESIS_HASH = "0" * 64
#: Chain key of transactions without a community (the district chain).
DISTRICT_CHAIN = 0


def chain_key_of(community_id: int | None) -> int:
    """Return the hash chain of a transaction of ``community_id`` (0: none)."""
    return DISTRICT_CHAIN if community_id is None else int(community_id)


def chain_genesis(chain_key: int, legacy_last_hash: str) -> str:
    """Return the ``prev_hash`` of the first transaction of chain ``chain_key``.

    Derived from the last hash of the legacy single chain (``GENESIS_HASH`` when it
    is empty), so every chain is bound to the whole legacy history: truncating or
    altering the legacy tail changes every chain's genesis.
    """
    raw = f"ledger-chain-genesis:v2:{int(chain_key)}:{legacy_last_hash}"
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


#: Longest reason of a transaction (the ``reason`` column; adjustments, reversals).
MAX_REASON = 500
#: Largest absolute amount of one secretary adjustment.
MAX_ADJUSTMENT = 100_000


class AccountKind(enum.StrEnum):
    MEMBER_AVAILABLE = "member_available"  # the spendable wallet (one per member)
    MEMBER_HELD = "member_held"  # points held for pending redemptions (one per member)
    ISSUANCE = "issuance"  # per community: source of earned points
    REDEMPTION_SINK = "redemption_sink"  # per community: points spent on rewards
    EXPIRY_SINK = "expiry_sink"  # per community: points that expired
    ADJUSTMENT = "adjustment"  # per community: secretary adjustments


#: Accounts owned by a member: balance >= 0 (CHECK and conditional UPDATE).
MEMBER_KINDS: frozenset[AccountKind] = frozenset(
    {AccountKind.MEMBER_AVAILABLE, AccountKind.MEMBER_HELD}
)
_MEMBER_KINDS_SQL = "('member_available', 'member_held')"


class TransactionKind(enum.StrEnum):
    EARN = "earn"  # issuance -> member available (settlement of a delivery)
    HOLD = "hold"  # member available -> member held (redemption requested)
    RELEASE = "release"  # member held -> member available (cancelled/rejected/expired hold)
    REDEEM = "redeem"  # member held -> redemption sink (redemption fulfilled)
    EXPIRE = "expire"  # member available -> expiry sink (wallet expiry by policy)
    ADJUST = "adjust"  # adjustment <-> member available (secretary, with a reason)
    REVERSE = "reverse"  # the negated legs of an earlier transaction


def owner_key(kind: AccountKind, user_id: int | None, community_id: int | None) -> str:
    """Return the unique owner key of an account, e.g. ``member_available:u12:``."""
    return f"{kind.value}:u{user_id or ''}:c{community_id or ''}"


class LedgerAccount(Model):
    """An account with a cached balance; member accounts have no community."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        sa.CheckConstraint(
            f"kind NOT IN {_MEMBER_KINDS_SQL} OR balance >= 0", name="member_balance_nonnegative"
        ),
        sa.CheckConstraint(
            "earned >= 0 AND (kind = 'member_available' OR earned = 0)", name="earned_on_wallet"
        ),
        sa.CheckConstraint(
            f"(kind IN {_MEMBER_KINDS_SQL} AND user_id IS NOT NULL AND community_id IS NULL)"
            f" OR (kind NOT IN {_MEMBER_KINDS_SQL} AND user_id IS NULL"
            " AND community_id IS NOT NULL)",
            name="owner_shape",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind, "ledger_account_kind"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    #: ``kind:u<user_id>:c<community_id>`` -- UNIQUE, so NULL owners cannot duplicate.
    owner_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: Cached sum of this account's entries; changed only by conditional UPDATEs.
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Service record (member_available only): + earn, - reversed earn; never lowered
    #: by redemption or expiry.
    earned: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<LedgerAccount {self.id} {self.owner_key} balance={self.balance}>"


class LedgerTransaction(Model):
    """A balanced set of entries with its references and its link in the hash chain."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        sa.CheckConstraint(
            "(kind = 'reverse' AND reverses_id IS NOT NULL)"
            " OR (kind <> 'reverse' AND reverses_id IS NULL)",
            name="reverse_has_target",
        ),
        sa.CheckConstraint(
            "kind <> 'earn' OR (delivery_id IS NOT NULL AND member_id IS NOT NULL"
            " AND minutes IS NOT NULL)",
            name="earn_has_source",
        ),
        sa.CheckConstraint("minutes IS NULL OR minutes >= 0", name="minutes_nonnegative"),
        #: A delivery earns at most once per member.
        sa.Index(
            "uq_ledger_transactions_earn_once",
            "delivery_id",
            "member_id",
            unique=True,
            sqlite_where=sa.text("kind = 'earn'"),
            postgresql_where=sa.text("kind = 'earn'"),
        ),
        sa.Index("ix_ledger_transactions_member_id_id", "member_id", "id"),
        sa.Index("ix_ledger_transactions_community_id_id", "community_id", "id"),
        sa.Index("ix_ledger_transactions_chain_key_id", "chain_key", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(
        str_enum(TransactionKind, "ledger_transaction_kind")
    )
    #: Retrying with the same key returns this transaction instead of posting again.
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    #: The member whose accounts the transaction touches (None for purely
    #: institutional transactions).
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    #: The delivery settled by an earn (a reversal of it carries it too).
    delivery_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deliveries.id"))
    #: The redemption moved by a hold/release/redeem (FK added with rewards).
    redemption_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    #: The transaction this one reverses (at most one reversal each).
    reverses_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("ledger_transactions.id"), unique=True
    )
    #: Service minutes of an earn, copied from the delivery record, so hours can be
    #: derived from the ledger alone (rankings, rebuilds).
    minutes: Mapped[int | None]
    #: The points policy version used by an earn.
    policy_id: Mapped[int | None] = mapped_column(sa.ForeignKey("points_policies.id"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(sa.String(MAX_REASON))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The hash chain of the transaction (:func:`chain_key_of` its community); NULL for
    #: the legacy single chain (transactions posted before the per-community chains).
    chain_key: Mapped[int | None]
    #: Hash of the previous transaction of its chain (the chain's genesis for the first).
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    #: sha256 hex over the canonical JSON of this transaction, its entries and prev_hash.
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)

    entries: Mapped[list[LedgerEntry]] = relationship(
        lazy="raise_on_sql", viewonly=True, order_by="LedgerEntry.id"
    )

    def __repr__(self) -> str:
        return f"<LedgerTransaction {self.id} {self.kind} member={self.member_id}>"


class LedgerEntry(Model):
    """One leg of a transaction: a non-zero amount on one account. Never changed."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.CheckConstraint("amount <> 0", name="amount_nonzero"),
        #: One leg per account per transaction (also the index by transaction).
        sa.UniqueConstraint(
            "transaction_id", "account_id", name="uq_ledger_entries_transaction_account"
        ),
        sa.Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    account: Mapped[LedgerAccount] = relationship(lazy="raise_on_sql")


class LedgerHead(Model):
    """The single row (id 1) holding the end of the legacy chain (frozen since the
    per-community chains); locked by whole-ledger operations as the registry lock."""

    __tablename__ = "ledger_head"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_transaction_id: Mapped[int | None]
    last_hash: Mapped[str] = mapped_column(sa.String(64), default=GENESIS_HASH)
    transaction_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerChainHead(Model):
    """One row per hash chain: its last transaction; the posting lock of its chain."""

    __tablename__ = "ledger_chain_heads"

    chain_key: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_transaction_id: Mapped[int | None]
    #: The chain's last hash (its genesis while it is empty).
    last_hash: Mapped[str] = mapped_column(sa.String(64))
    transaction_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerAnchor(Model):
    """A snapshot of every chain head, itself linked in the (linear) anchor chain.

    ``heads`` is canonical JSON ``[[chain_key, last_transaction_id, last_hash,
    transaction_count], ...]`` sorted by chain key; ``hash`` = sha256 over the canonical
    JSON of ``created_at``, ``heads`` and ``prev_hash`` (``services/ledger/anchors.py``).
    """

    __tablename__ = "ledger_anchors"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heads: Mapped[str] = mapped_column(sa.Text)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)


# --- append-only triggers ---------------------------------------------------------

APPEND_ONLY_TABLES = ("ledger_transactions", "ledger_entries")

_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " RAISE EXCEPTION USING MESSAGE = 'ledger rows are append-only: ' || TG_OP"
    " || ' on ' || TG_TABLE_NAME || ' refused';"
    " END $$"
)


def _table_trigger_ddl(dialect_name: str, table: str) -> list[str]:
    if dialect_name == "sqlite":
        return [
            f"CREATE TRIGGER trg_{table}_no_{op.lower()} BEFORE {op} ON {table}"
            f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
            for op in ("UPDATE", "DELETE")
        ]
    if dialect_name == "postgresql":
        return [
            _PG_FUNCTION,
            f"CREATE TRIGGER trg_{table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
        ]
    raise ValueError(f"no ledger triggers for dialect {dialect_name!r}")


def ledger_trigger_ddl(dialect_name: str) -> list[str]:
    """Return the statements that make the ledger tables append-only on this dialect.

    Used by ``create_all`` (attached below) and by the migration that creates the
    ledger tables (``for s in ledger_trigger_ddl(op.get_bind().dialect.name): op.execute(s)``).
    """
    out: list[str] = []
    for table in APPEND_ONLY_TABLES:
        for stmt in _table_trigger_ddl(dialect_name, table):
            if stmt not in out:
                out.append(stmt)
    return out


def ledger_trigger_drop_ddl(dialect_name: str) -> list[str]:
    """Return the statements that remove the append-only triggers (migration downgrade)."""
    if dialect_name == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS trg_{table}_no_{op}"
            for table in APPEND_ONLY_TABLES
            for op in ("update", "delete")
        ]
    if dialect_name == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS trg_{table}_append_only ON {table}"
            for table in APPEND_ONLY_TABLES
        ] + ["DROP FUNCTION IF EXISTS ledger_refuse_change()"]
    raise ValueError(f"no ledger triggers for dialect {dialect_name!r}")


_PG_ANCHOR_FUNCTION = _PG_FUNCTION.replace("ledger_refuse_change", "ledger_anchor_refuse_change")


def anchor_trigger_ddl(dialect_name: str) -> list[str]:
    """The statements that make ``ledger_anchors`` append-only (its own trigger
    function on PostgreSQL, so the transaction triggers can be dropped without it)."""
    if dialect_name == "postgresql":
        return [
            _PG_ANCHOR_FUNCTION,
            "CREATE TRIGGER trg_ledger_anchors_append_only BEFORE UPDATE OR DELETE ON"
            " ledger_anchors FOR EACH ROW EXECUTE FUNCTION ledger_anchor_refuse_change()",
        ]
    return _table_trigger_ddl(dialect_name, "ledger_anchors")


def anchor_trigger_drop_ddl(dialect_name: str) -> list[str]:
    """The statements that remove the anchors' append-only trigger."""
    if dialect_name == "sqlite":
        return [f"DROP TRIGGER IF EXISTS trg_ledger_anchors_no_{op}" for op in ("update", "delete")]
    return [
        "DROP TRIGGER IF EXISTS trg_ledger_anchors_append_only ON ledger_anchors",
        "DROP FUNCTION IF EXISTS ledger_anchor_refuse_change()",
    ]


for _model in (LedgerTransaction, LedgerEntry):
    for _dialect in ("sqlite", "postgresql"):
        for _stmt in _table_trigger_ddl(_dialect, _model.__tablename__):
            event.listen(_model.__table__, "after_create", DDL(_stmt).execute_if(dialect=_dialect))
for _dialect in ("sqlite", "postgresql"):
    for _stmt in anchor_trigger_ddl(_dialect):
        event.listen(
            LedgerAnchor.__table__, "after_create", DDL(_stmt).execute_if(dialect=_dialect)
        )
