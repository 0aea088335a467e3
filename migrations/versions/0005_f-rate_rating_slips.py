"""rating slips: the rating secret never reaches a participant (issue 15)

Until now the recorder of a delivery (a participant) was handed every beneficiary's
one-time code and QR token. From this revision a code exists only once the community's
secretary or a grid worker who did not serve in the delivery issues a rating slip
(``delivery_beneficiaries.code_issued_by_id`` / ``code_issued_at``); the digests are
NULL while no slip is out.

Data: every unused code of a delivery that still awaits ratings was shown to its
recorder, so it is voided here (digests set to NULL). Residents with an account rate
from their own session; for the others the secretary issues slips again.

Revision ID: 0005_f_rate_slips
Revises: 0004
Create Date: 2026-12-02 03:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_f_rate_slips"
down_revision = "0004"
branch_labels = None
depends_on = None

VOID_SEEN_CODES = """
UPDATE delivery_beneficiaries SET rating_code_hash = NULL, rating_token_hash = NULL
WHERE code_used_at IS NULL
  AND delivery_id IN (SELECT id FROM deliveries WHERE status = 'awaiting_ratings')
"""


def upgrade():
    with op.batch_alter_table("delivery_beneficiaries", schema=None) as batch_op:
        batch_op.alter_column("rating_code_hash", existing_type=sa.String(64), nullable=True)
        batch_op.alter_column("rating_token_hash", existing_type=sa.String(64), nullable=True)
        batch_op.add_column(sa.Column("code_issued_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("code_issued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_delivery_beneficiaries_code_issued_by_id_users"),
            "users",
            ["code_issued_by_id"],
            ["id"],
        )
    op.execute(VOID_SEEN_CODES)


def downgrade():
    # The old schema needs a digest on every row: unusable placeholders (no code
    # hashes to them), unique per row for the token.
    op.execute(
        "UPDATE delivery_beneficiaries SET rating_code_hash = 'void' "
        "WHERE rating_code_hash IS NULL"
    )
    op.execute(
        "UPDATE delivery_beneficiaries SET rating_token_hash = 'void-' || CAST(id AS VARCHAR(20)) "
        "WHERE rating_token_hash IS NULL"
    )
    with op.batch_alter_table("delivery_beneficiaries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_delivery_beneficiaries_code_issued_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("code_issued_at")
        batch_op.drop_column("code_issued_by_id")
        batch_op.alter_column("rating_token_hash", existing_type=sa.String(64), nullable=False)
        batch_op.alter_column("rating_code_hash", existing_type=sa.String(64), nullable=False)
