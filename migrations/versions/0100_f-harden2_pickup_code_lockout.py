"""pickup-code lock-out: wrong codes counted per redemption, locked until a time (issue 20)

Revision ID: 0100_f_harden2_1
Revises: 0099_merge
Create Date: 2026-12-02 07:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0100_f_harden2_1"
down_revision = "0099_merge"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE (SQLite >= 3.35 drops columns too): a batch copy of the table
    # would have to rebuild the partial unique index on held pickup codes.
    op.add_column(
        "redemptions",
        sa.Column("code_failures", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "redemptions", sa.Column("code_locked_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade():
    op.drop_column("redemptions", "code_locked_until")
    op.drop_column("redemptions", "code_failures")
