"""large-text mode (适老化): a per-user switch (issue 17)

Revision ID: 0200_f_home_1
Revises: 0199_merge
Create Date: 2026-12-02 13:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0200_f_home_1'
down_revision = '0199_merge'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTERs, no batch copy: rebuilding ``users`` on SQLite would trip the foreign
    # keys of every table that references it (as 0005_f_onboard_1).
    op.add_column(
        "users",
        sa.Column("large_text", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade():
    # SQLite >= 3.35 drops a column in place (the project requires 3.51, see setup.cfg).
    op.execute("ALTER TABLE users DROP COLUMN large_text")
