"""One hash chain per community: chain heads, anchors, ledger_transactions.chain_key
(issue 21, item 4)

No history is rewritten: the transactions posted so far stay in the legacy single
chain (``chain_key`` NULL, hash v1, ending at ``ledger_head``), and each new chain
starts from a genesis derived from the legacy chain's last hash
(``models.ledger.chain_genesis``); its head row is created by its first posting. So
the migration is a nullable column, an index and two new tables -- no per-row update,
cheap on a 10M-entry database (the index build reads the table once).

Revision ID: 0400_ledger_chains
Revises: 0300_session_reminders_1
"""

import sqlalchemy as sa
from alembic import op

from volunteer_market.models.ledger import anchor_trigger_ddl, anchor_trigger_drop_ddl

revision = "0400_ledger_chains"
down_revision = "0300_session_reminders_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER (a nullable column, no default): no rewrite, no batch copy on SQLite;
    # the append-only triggers fire on UPDATE/DELETE of rows only.
    op.add_column("ledger_transactions", sa.Column("chain_key", sa.Integer(), nullable=True))
    op.create_index(
        "ix_ledger_transactions_chain_key_id", "ledger_transactions", ["chain_key", "id"]
    )
    op.create_table(
        "ledger_chain_heads",
        sa.Column("chain_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_transaction_id", sa.Integer(), nullable=True),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("transaction_count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_key", name=op.f("pk_ledger_chain_heads")),
    )
    op.create_table(
        "ledger_anchors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heads", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_anchors")),
        sa.UniqueConstraint("hash", name=op.f("uq_ledger_anchors_hash")),
    )
    for stmt in anchor_trigger_ddl(op.get_bind().dialect.name):
        op.execute(stmt)


def downgrade() -> None:
    for stmt in anchor_trigger_drop_ddl(op.get_bind().dialect.name):
        op.execute(stmt)
    op.drop_table("ledger_anchors")
    op.drop_table("ledger_chain_heads")
    op.drop_index("ix_ledger_transactions_chain_key_id", table_name="ledger_transactions")
    # SQLite >= 3.35 drops a column in place (the project requires 3.51, see setup.cfg).
    op.execute("ALTER TABLE ledger_transactions DROP COLUMN chain_key")
