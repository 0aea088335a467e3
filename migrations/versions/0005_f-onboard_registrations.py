"""registrations: self-registration (在职党员到社区报到) decided by the secretary (issue 18)

Revision ID: 0005_f_onboard_3
Revises: 0005_f_onboard_2
Create Date: 2026-12-02 03:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_f_onboard_3"
down_revision = "0005_f_onboard_2"
branch_labels = None
depends_on = None

ROLES = ("member", "resident", "grid_worker", "secretary", "officer", "admin")


def upgrade():
    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(*ROLES, name="registration_role", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("home_unit", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                name="registration_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("status_token_hash", sa.String(length=64), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('member', 'resident')", name=op.f("ck_registrations_member_or_resident")
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)",
            name=op.f("ck_registrations_decided_when_not_pending"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["areas.id"], name=op.f("fk_registrations_community_id_areas")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_registrations_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_registrations_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
        sa.UniqueConstraint(
            "status_token_hash", name=op.f("uq_registrations_status_token_hash")
        ),
    )
    op.create_index(
        "uq_registrations_pending_phone",
        "registrations",
        ["phone"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_registrations_community_status", "registrations", ["community_id", "status"]
    )


def downgrade():
    op.drop_index("ix_registrations_community_status", table_name="registrations")
    op.drop_index("uq_registrations_pending_phone", table_name="registrations")
    op.drop_table("registrations")
