"""The contract number over HTTP: 2 h rated 5 and 4 (average 4.5) earn
round(2 x 10 x 1.2) = 24 points per participant."""

from __future__ import annotations

from datetime import timedelta

from volunteer_market.extensions import db
from volunteer_market.models import Notification, utcnow

from ..factories import points_of, rate_delivery
from .conftest import table_count, verified


def test_two_hours_rated_5_and_4_earn_24_each_automatically(api, scene):
    w, d = scene.world, scene.delivery
    first = api.post(w.resident_a, f"/api/v1/deliveries/{d.id}/ratings", {"score": 5})
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["delivery_status"] == "awaiting_ratings"
    second = api.post(
        w.resident_a2, f"/api/v1/deliveries/{d.id}/ratings", {"score": 4, "comment": "很耐心"}
    )
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["delivery_status"] == "settled"

    body = api.get(w.secretary_a, f"/api/v1/deliveries/{d.id}/settlement").get_json()
    assert body["status"] == "settled"
    assert body["average_score"] == 4.5 and body["multiplier"] == 1.2
    assert body["policy_version"] == 1 and body["automatic"] is True
    assert body["settled_by_id"] is None and body["ratings_count"] == 2
    postings = {p["user_id"]: p for p in body["postings"]}
    assert {u: (p["points"], p["minutes"]) for u, p in postings.items()} == {
        w.member_a.id: (24, 120),
        w.member_a2.id: (24, 120),
    }
    assert all(p["transaction_id"] for p in body["postings"])
    for member in (w.member_a, w.member_a2):
        assert points_of(member) == {"available": 24, "held": 0, "earned_total": 24}
    assert table_count("ledger_transactions", "kind = 'earn'") == 2
    assert verified()

    # the members' ledgers show the earn with its source and reason
    ledger = api.get(w.member_a, f"/api/v1/users/{w.member_a.id}/ledger").get_json()
    earn = ledger["items"][0]
    assert (earn["kind"], earn["delivery_id"], earn["minutes"], earn["available_change"]) == (
        "earn",
        d.id,
        120,
        24,
    )
    assert "1.2" in earn["reason"] and f"#{d.id}" in earn["reason"]


def test_secretary_settles_after_the_window_with_the_contract_numbers(api, scene):
    """Two of three beneficiaries rated 5 and 4 inside the window; the secretary settles
    after it: 24 points each, the response lists the postings."""
    w = scene.world
    from .conftest import more_residents

    (third,) = more_residents(w, 1)
    recorded_at = utcnow() - timedelta(days=8)
    d = scene.record(
        now=recorded_at, beneficiaries=[w.resident_a, w.resident_a2, third], hours_ago=3
    )
    inside = recorded_at + timedelta(hours=1)
    rate_delivery(w.resident_a, d, 5, now=inside)
    rate_delivery(w.resident_a2, d, 4, now=inside)
    resp = api.post(w.secretary_a, f"/api/v1/deliveries/{d.id}/settle", {})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "settled"
    assert (body["average_score"], body["multiplier"], body["policy_version"]) == (4.5, 1.2, 1)
    assert sorted((p["user_id"], p["points"], p["minutes"]) for p in body["postings"]) == sorted(
        [(w.member_a.id, 24, 120), (w.member_a2.id, 24, 120)]
    )
    tx_ids = {p["transaction_id"] for p in body["postings"]}
    assert len(tx_ids) == 2 and None not in tx_ids
    assert body["settled_by_id"] == w.secretary_a.id and body["automatic"] is False
    assert points_of(w.member_a)["available"] == 24
    assert verified()


def test_points_posted_and_rating_received_notifications(api, scene):
    w, d = scene.world, scene.delivery
    api.post(w.resident_a, f"/api/v1/deliveries/{d.id}/ratings", {"score": 5, "comment": "好"})
    api.post(w.resident_a2, f"/api/v1/deliveries/{d.id}/ratings", {"score": 4})
    db.session.rollback()
    notes = db.session.query(Notification).filter(Notification.user_id == w.member_a.id).all()
    kinds = [n.kind for n in notes]
    assert kinds.count("rating.received") == 2 and kinds.count("points.earned") == 1
    received = [n for n in notes if n.kind == "rating.received"]
    for n in received:
        assert set(n.params) == {"title", "score", "has_comment", "rating_id"}
        assert w.resident_a.id not in n.params.values() and "resident_a" not in str(n.params)
    earned = next(n for n in notes if n.kind == "points.earned")
    assert earned.params["points"] == 24 and earned.params["minutes"] == 120
    assert earned.params["reason"] and earned.params["multiplier"] == "1.2"
