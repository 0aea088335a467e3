"""The wallet summary used by /api/v1/me and the home page; the demo data."""

from __future__ import annotations

from volunteer_market import demo
from volunteer_market.extensions import db
from volunteer_market.models import PointsPolicy
from volunteer_market.services.verify import verify
from volunteer_market.services.wallet import points_summary

from ..factories import bearer, give_points, post_earn
from .conftest import counts


def test_points_summary(client, world, delivery):
    assert points_summary(world.member_a) == {"available": 0, "held": 0, "earned_total": 0}
    give_points(world.member_a, 30)
    post_earn(world.member_a, world.community_a, delivery_id=delivery(), points=24)
    give_points(world.member_a, -40)
    assert points_summary(world.member_a) == {"available": 14, "held": 0, "earned_total": 24}
    me = client.get("/api/v1/me", headers=bearer(world.member_a)).get_json()
    assert me["points"] == {"available": 14, "held": 0, "earned_total": 24}
    assert points_summary(world.secretary_a) == {"available": 0, "held": 0, "earned_total": 0}


def test_demo_ledger_loader_is_idempotent(app):
    demo.people.load()
    demo.ledger.load()
    first = counts()
    demo.ledger.load()
    assert counts() == first
    assert first["ledger_transactions"] == 2
    assert db.session.query(PointsPolicy).filter_by(community_id=None).count() == 1
    assert points_summary(demo.demo_user("member_chen"))["available"] == 20
    assert points_summary(demo.demo_user("member_liu"))["available"] == 15
    assert verify() is None
    assert demo.ledger.load in demo.LOADERS
