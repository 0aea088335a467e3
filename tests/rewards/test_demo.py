"""The rewards demo loads through the services, twice without change."""

from __future__ import annotations

import sqlalchemy as sa

from volunteer_market.demo import load_demo
from volunteer_market.extensions import db

from .conftest import snapshot, verified


def test_demo_rewards_are_idempotent(app):
    load_demo()
    first = snapshot()
    db.session.rollback()
    rewards = db.session.execute(sa.text("SELECT name, sponsor FROM rewards ORDER BY id")).all()
    names = {n for n, _s in rewards}
    assert {"中百超市 20 元购物券", "社区医院 免费体检券", "爱心理发券"} <= names
    statuses = {s for (s,) in db.session.execute(sa.text("SELECT status FROM redemptions")).all()}
    assert statuses == {"held", "fulfilled", "cancelled", "rejected", "expired"}
    verified()
    load_demo()
    assert snapshot() == first
