"""Join the chains of the second round of feature branches into one head.

Revision ID: 0199_merge
Revises: the heads of the hardening, moderation, running-a-community (and any other) chains
"""

revision = "0199_merge"
down_revision = ("0100_f_dash_1", "0100_f_harden2_1", "0100_f_rate2_1")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: the chains touch different tables."""


def downgrade() -> None:
    """Nothing to do."""
