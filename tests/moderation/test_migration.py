"""Migration 0100_f_rate2_1 (comment reports, hidden comments, call-backs): upgrades
with the ratings' CHECKs kept and the new one enforced, downgrades to 0099 keeping the
ratings, and upgrades again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from volunteer_market.database import atomic
from volunteer_market.extensions import db

from ..factories import build_world, make_delivery, make_project, rate_delivery
from ..test_migrations import empty_app  # noqa: F401


def test_0100_upgrades_downgrades_and_upgrades_again(empty_app):  # noqa: F811
    upgrade()
    w = build_world()
    project = make_project(w.member_a, w.community_a, status="approved")
    delivery = make_delivery(project, w.member_a, beneficiaries=[w.resident_a]).delivery
    rating = rate_delivery(w.resident_a, delivery, 2, "很差").rating
    # a hidden comment needs its hider and reason (the CHECK), on the migrated schema
    with pytest.raises(IntegrityError), atomic():
        db.session.execute(
            sa.text("UPDATE ratings SET comment_hidden_at = created_at WHERE id = :id"),
            {"id": rating.id},
        )
    with pytest.raises(IntegrityError), atomic():  # and the score CHECK survived the batch
        db.session.execute(
            sa.text("UPDATE ratings SET score = 9 WHERE id = :id"), {"id": rating.id}
        )
    db.session.remove()
    downgrade(revision="0099_merge")
    with db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert not {"comment_reports", "rating_callbacks"} & set(inspector.get_table_names())
        columns = {c["name"] for c in inspector.get_columns("ratings")}
        assert "comment_hidden_at" not in columns
        assert conn.execute(sa.text("SELECT comment FROM ratings")).scalars().all() == ["很差"]
    upgrade()
    with db.engine.connect() as conn:
        assert "comment_reports" in sa.inspect(conn).get_table_names()
