"""The audit viewer reads an area's entries newest first: index (area_id, id).

Revision ID: 0100_f_dash_1
Revises: 0099_merge
"""

from alembic import op

revision = "0100_f_dash_1"
down_revision = "0099_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``ix_audit_log_area_id``."""
    op.create_index("ix_audit_log_area_id", "audit_log", ["area_id", "id"])


def downgrade() -> None:
    """Drop ``ix_audit_log_area_id``."""
    op.drop_index("ix_audit_log_area_id", table_name="audit_log")
