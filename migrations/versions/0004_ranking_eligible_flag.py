"""rankings: a stored eligibility flag on member rollup rows (issue 5)

``ranking_members.eligible`` is False while the member is excluded from that area's
boards (suspended, or their member role there has ended), and the score buckets count
eligible rows only. A ranking then reads no exclusion list at all: at 10M ledger
entries the read-time look-up of a district's ~300 excluded members cost 10-25 ms on
PostgreSQL (one rollup probe per excluded member, in an 8.7M-row table).

Data: the flag is computed here with the same rule the services apply
(``services.rankings.MemberState.eligible_in``), then the buckets are recounted from
the eligible rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 15:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Rows whose member is suspended, or holds an ended member grant on an area related
#: to the row's area (its subtree or an ancestor) and no active one there.
EXCLUDED = """
UPDATE ranking_members SET eligible = false
WHERE user_id IN (SELECT id FROM users WHERE is_active = false)
   OR (user_id IN (SELECT user_id FROM role_grants
                   WHERE role = 'member' AND revoked_at IS NOT NULL)
       AND EXISTS (
           SELECT 1 FROM role_grants g, areas ga, areas x
           WHERE g.user_id = ranking_members.user_id AND g.role = 'member'
             AND g.revoked_at IS NOT NULL AND ga.id = g.area_id
             AND x.id = ranking_members.area_id
             AND (ga.path LIKE x.path || '%' OR x.path LIKE ga.path || '%'))
       AND NOT EXISTS (
           SELECT 1 FROM role_grants g, areas ga, areas x
           WHERE g.user_id = ranking_members.user_id AND g.role = 'member'
             AND g.revoked_at IS NULL AND ga.id = g.area_id
             AND x.id = ranking_members.area_id
             AND (ga.path LIKE x.path || '%' OR x.path LIKE ga.path || '%')))
"""

RECOUNT = """
INSERT INTO ranking_score_counts (area_id, period_key, points, members)
SELECT area_id, period_key, points, count(*) FROM ranking_members
WHERE eligible = true AND points > 0
GROUP BY area_id, period_key, points
"""


def upgrade():
    op.add_column(
        "ranking_members",
        sa.Column("eligible", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.execute(EXCLUDED)
    op.execute("DELETE FROM ranking_score_counts")
    op.execute(RECOUNT)


def downgrade():
    with op.batch_alter_table("ranking_members", schema=None) as batch_op:
        batch_op.drop_column("eligible")
    op.execute("DELETE FROM ranking_score_counts")
    op.execute(RECOUNT.replace("eligible = true AND ", ""))
