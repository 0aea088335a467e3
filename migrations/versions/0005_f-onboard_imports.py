"""imports: a job row per uploaded file of residents or members (issue 18)

Revision ID: 0005_f_onboard_2
Revises: 0005_f_onboard_1
Create Date: 2026-12-02 03:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_f_onboard_2"
down_revision = "0005_f_onboard_1"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Enum("residents", "members", name="import_kind", native_enum=False, create_constraint=True, length=9), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Enum("pending", "running", "done", "failed", name="import_status", native_enum=False, create_constraint=True, length=7), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("done >= 0 AND done <= total", name=op.f("ck_import_jobs_done_within_total")),
        sa.CheckConstraint(
            "created >= 0 AND updated >= 0 AND unchanged >= 0 AND refused >= 0 AND written >= 0",
            name=op.f("ck_import_jobs_counts_not_negative"),
        ),
        sa.ForeignKeyConstraint(["community_id"], ["areas.id"], name=op.f("fk_import_jobs_community_id_areas")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_import_jobs_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_index("ix_import_jobs_status", "import_jobs", ["status"], unique=False)
    op.create_index(op.f("ix_import_jobs_community_id"), "import_jobs", ["community_id"], unique=False)
    op.create_index(op.f("ix_import_jobs_created_by_id"), "import_jobs", ["created_by_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_import_jobs_created_by_id"), table_name="import_jobs")
    op.drop_index(op.f("ix_import_jobs_community_id"), table_name="import_jobs")
    op.drop_index("ix_import_jobs_status", table_name="import_jobs")
    op.drop_table("import_jobs")
