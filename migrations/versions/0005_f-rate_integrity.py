"""integrity signals: a community's recent sessions by start time (issue 15)

Revision ID: 0005_f_rate_integrity
Revises: 0005_f_rate_appeals
Create Date: 2026-12-02 03:40:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_f_rate_integrity"
down_revision = "0005_f_rate_appeals"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_community_started", ["community_id", "started_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_community_started")
