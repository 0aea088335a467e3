"""Join the feature branches' migration chains into one head.

Revision ID: 0099_merge
Revises: the heads of the imports/registrations, rating-slips and annual-evaluation chains
"""

revision = "0099_merge"
down_revision = ("0005_f_onboard_3", "0005_f_rate_integrity", "0005")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to do: the chains touch different tables."""


def downgrade() -> None:
    """Nothing to do."""
