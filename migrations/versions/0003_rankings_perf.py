"""rankings read performance (issue 5)

The exclusion look-up of a ranking reads the ended member grants of the scope's
areas: a partial index of revoked grants only, covering (area_id, role, user_id,
revoked_at), replaces ix_role_grants_area_role_revoked (with which a district read
every matching grant row from the table).

Data: empty points buckets (``ranking_score_counts.members = 0``) are deleted; the
services no longer keep them and ``ledger verify`` compares the buckets exactly.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 08:55:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ENDED = "revoked_at IS NOT NULL"


def upgrade():
    # The services now delete a points bucket when its member count drops to 0, as
    # rankings.rebuild() never writes one, and ledger verify compares the buckets
    # exactly: drop the empty buckets that earlier code left behind.
    op.execute("DELETE FROM ranking_score_counts WHERE members = 0")
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_role_grants_area_role_revoked")
        batch_op.create_index(
            "ix_role_grants_ended",
            ["area_id", "role", "user_id", "revoked_at"],
            unique=False,
            sqlite_where=sa.text(ENDED),
            postgresql_where=sa.text(ENDED),
        )


def downgrade():
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_role_grants_ended",
            sqlite_where=sa.text(ENDED),
            postgresql_where=sa.text(ENDED),
        )
        batch_op.create_index(
            "ix_role_grants_area_role_revoked", ["area_id", "role", "revoked_at"], unique=False
        )
