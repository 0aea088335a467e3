"""The reminder before a session: session_signups.reminded_at (issue 19)

Revision ID: 0300_session_reminders_1
Revises: 0299_merge
"""

import sqlalchemy as sa
from alembic import op

revision = "0300_session_reminders_1"
down_revision = "0299_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER (a nullable column): no batch copy of the table on SQLite.
    op.add_column(
        "session_signups", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (the project requires 3.51, see setup.cfg).
    op.execute("ALTER TABLE session_signups DROP COLUMN reminded_at")
