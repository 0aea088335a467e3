"""Join the chains of the third round of feature branches (sessions, outbox, home) into one head.

Revision ID: 0299_merge
Revises: the heads of those chains
"""

revision = "0299_merge"
down_revision = ("0200_f_home_1", "0200_f_outbox_1", "0200_f_sessions_1")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: the chains touch different tables."""


def downgrade() -> None:
    """Nothing to do."""
