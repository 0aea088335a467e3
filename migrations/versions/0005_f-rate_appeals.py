"""appeals: a rating or a points award appealed and decided above the community (issue 15)

Revision ID: 0005_f_rate_appeals
Revises: 0005_f_rate_slips
Create Date: 2026-12-02 03:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_f_rate_appeals"
down_revision = "0005_f_rate_slips"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("appellant_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("rating_id", sa.Integer(), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "upheld",
                "dismissed",
                name="appeal_status",
                native_enum=False,
                create_constraint=True,
                length=9,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("result_transaction_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(rating_id IS NULL) <> (transaction_id IS NULL)", name=op.f("ck_appeals_one_subject")
        ),
        sa.CheckConstraint(
            "(status = 'open') = (decided_at IS NULL)",
            name=op.f("ck_appeals_decided_when_closed"),
        ),
        sa.CheckConstraint(
            "result_transaction_id IS NULL OR status = 'upheld'",
            name=op.f("ck_appeals_result_only_upheld"),
        ),
        sa.ForeignKeyConstraint(
            ["appellant_id"], ["users.id"], name=op.f("fk_appeals_appellant_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name=op.f("fk_appeals_community_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_appeals_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_appeals_delivery_id_deliveries")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["users.id"], name=op.f("fk_appeals_member_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"], ["ratings.id"], name=op.f("fk_appeals_rating_id_ratings")
        ),
        sa.ForeignKeyConstraint(
            ["result_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_appeals_result_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_appeals_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeals_appellant_id"), ["appellant_id"], unique=False)
        batch_op.create_index(
            "ix_appeals_community_status", ["community_id", "status"], unique=False
        )
        batch_op.create_index(
            "uq_appeals_open_subject",
            ["appellant_id", "subject"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )


def downgrade():
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_appeals_open_subject",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_appeals_community_status")
        batch_op.drop_index(batch_op.f("ix_appeals_appellant_id"))
    op.drop_table("appeals")
