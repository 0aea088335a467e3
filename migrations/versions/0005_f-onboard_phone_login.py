"""accounts: login by phone number; a reset password must be changed (issue 18)

``users.phone`` becomes unique (one account per mobile number, NULLs allowed many
times) so a phone number names one account at the login form and in the bulk import;
``users.must_change_password`` is set when a secretary resets someone's password.

Data: an existing database that holds one phone number on several accounts cannot get
the unique index; the upgrade stops with the count so an operator resolves them first
(the numbers are personal data: they are not printed).

Revision ID: 0005_f_onboard_1
Revises: 0004
Create Date: 2026-12-02 03:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_f_onboard_1"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    duplicated = bind.execute(
        sa.text(
            "SELECT count(*) FROM (SELECT phone FROM users WHERE phone IS NOT NULL "
            "GROUP BY phone HAVING count(*) > 1) AS d"
        )
    ).scalar_one()
    if duplicated:
        raise RuntimeError(
            f"{duplicated} phone numbers are held by more than one account; "
            "give each account its own number (or none) before upgrading"
        )
    # Plain ALTERs, no batch copy: rebuilding ``users`` on SQLite would trip the foreign
    # keys of every table that references it.
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index("uq_users_phone", "users", ["phone"], unique=True)


def downgrade():
    op.drop_index("uq_users_phone", table_name="users")
    # SQLite >= 3.35 drops a column in place (the project requires 3.51, see setup.cfg).
    op.execute("ALTER TABLE users DROP COLUMN must_change_password")
