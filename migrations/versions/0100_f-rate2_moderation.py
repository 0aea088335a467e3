"""moderation and call-backs: comment reports, hidden comments, call-backs of proxy
ratings (issue 15)

Revision ID: 0100_f_rate2_1
Revises: 0099_merge
Create Date: 2026-12-02 07:14:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0100_f_rate2_1'
down_revision = '0099_merge'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('comment_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Enum('open', 'hidden', 'dismissed', name='comment_report_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint("(status = 'open') = (resolved_at IS NULL) AND (resolved_at IS NULL) = (resolved_by_id IS NULL)", name=op.f('ck_comment_reports_resolved_when_closed')),
    sa.ForeignKeyConstraint(['community_id'], ['areas.id'], name=op.f('fk_comment_reports_community_id_areas')),
    sa.ForeignKeyConstraint(['rating_id'], ['ratings.id'], name=op.f('fk_comment_reports_rating_id_ratings')),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], name=op.f('fk_comment_reports_reporter_id_users')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_comment_reports_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comment_reports')),
    sa.UniqueConstraint('rating_id', 'reporter_id', name=op.f('uq_comment_reports_rating_id'))
    )
    with op.batch_alter_table('comment_reports', schema=None) as batch_op:
        batch_op.create_index('ix_comment_reports_community_status', ['community_id', 'status'], unique=False)

    op.create_table('rating_callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('caller_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('confirmed', 'disputed', 'unreachable', name='callback_outcome', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['caller_id'], ['users.id'], name=op.f('fk_rating_callbacks_caller_id_users')),
    sa.ForeignKeyConstraint(['community_id'], ['areas.id'], name=op.f('fk_rating_callbacks_community_id_areas')),
    sa.ForeignKeyConstraint(['rating_id'], ['ratings.id'], name=op.f('fk_rating_callbacks_rating_id_ratings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rating_callbacks'))
    )
    with op.batch_alter_table('rating_callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_rating_callbacks_community_created', ['community_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_rating_callbacks_rating_id'), ['rating_id'], unique=False)
        batch_op.create_index('uq_rating_callbacks_final', ['rating_id'], unique=True, sqlite_where=sa.text("outcome <> 'unreachable'"), postgresql_where=sa.text("outcome <> 'unreachable'"))

    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comment_hidden_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('comment_hidden_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('comment_hidden_reason', sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_ratings_comment_hidden_by_id_users'), 'users', ['comment_hidden_by_id'], ['id'])
        batch_op.create_check_constraint(
            batch_op.f('ck_ratings_hidden_shape'),
            "(comment_hidden_at IS NULL) = (comment_hidden_by_id IS NULL)"
            " AND (comment_hidden_at IS NULL) = (comment_hidden_reason IS NULL)",
        )



def downgrade():
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_ratings_hidden_shape'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_ratings_comment_hidden_by_id_users'), type_='foreignkey')
        batch_op.drop_column('comment_hidden_reason')
        batch_op.drop_column('comment_hidden_by_id')
        batch_op.drop_column('comment_hidden_at')

    with op.batch_alter_table('rating_callbacks', schema=None) as batch_op:
        batch_op.drop_index('uq_rating_callbacks_final', sqlite_where=sa.text("outcome <> 'unreachable'"), postgresql_where=sa.text("outcome <> 'unreachable'"))
        batch_op.drop_index(batch_op.f('ix_rating_callbacks_rating_id'))
        batch_op.drop_index('ix_rating_callbacks_community_created')

    op.drop_table('rating_callbacks')
    with op.batch_alter_table('comment_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_comment_reports_community_status')

    op.drop_table('comment_reports')
