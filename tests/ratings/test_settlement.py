"""Settlement: when, by whom, with which numbers, exactly once, with the policy version
used, zero-point participants, idempotent replays, the secretary's queue."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    AuditEntry,
    Notification,
    Role,
    Settlement,
    SettlementPosting,
    utcnow,
)
from volunteer_market.services import points_policy, settlement
from volunteer_market.services.errors import Conflict, Forbidden

from ..factories import add_team_member, make_user, points_of, rate_delivery, settle_delivery
from .conftest import problem, table_count, verified


def _settle_path(d) -> str:
    return f"/api/v1/deliveries/{d.id}/settle"


def test_before_the_window_without_all_ratings_is_409(api, scene, unchanged):
    w, d = scene.world, scene.delivery
    rate_delivery(w.resident_a, d, 5)
    with unchanged():
        resp = api.post(w.secretary_a, _settle_path(d), {})
        assert resp.status_code == 409
        assert "window" in problem(resp)["detail"]
        resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True})
        assert resp.status_code == 409


def test_after_the_window_the_given_ratings_count(api, scene):
    w = scene.world
    recorded_at = utcnow() - timedelta(days=8)
    d = scene.record(now=recorded_at)
    rate_delivery(w.resident_a, d, 3, now=recorded_at + timedelta(minutes=5))
    resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True})  # ignored
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["ratings_count"], body["average_score"], body["multiplier"]) == (1, 3.0, 0.5)
    assert body["confirmed_unrated"] is False
    assert {p["points"] for p in body["postings"]} == {10}  # round(2 x 10 x 0.5)
    assert verified()


def test_nobody_rated_requires_confirmation(api, scene, unchanged):
    w = scene.world
    d = scene.record_closed()
    with unchanged():
        resp = api.post(w.secretary_a, _settle_path(d), {})
        assert resp.status_code == 409
        body = problem(resp)
        assert "confirm_unrated" in body["errors"] and "Nobody rated" in body["detail"]
        resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": False})
        assert resp.status_code == 409
        for bad in ("yes", 1, "true", None):
            resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": bad})
            assert resp.status_code == 422, bad
    resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["confirmed_unrated"] is True and body["multiplier"] == 1.0
    assert body["average_score"] is None and body["ratings_count"] == 0
    assert {p["points"] for p in body["postings"]} == {20}  # round(2 x 10 x 1.0)
    entry = db.session.query(AuditEntry).filter_by(action="delivery.settle").one()
    assert entry.actor_id == w.secretary_a.id and entry.detail["confirmed_unrated"] is True
    assert verified()


def test_a_delivery_without_beneficiaries_settles_after_the_window(api, scene):
    w = scene.world
    d = scene.record_closed(beneficiaries=[])
    resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True})
    assert resp.status_code == 200 and resp.get_json()["multiplier"] == 1.0


def test_settling_twice_is_409_and_posts_nothing_more(api, scene, unchanged):
    w = scene.world
    d = scene.record_closed()
    assert api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True}).status_code == 200
    with unchanged():
        resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True})
        assert resp.status_code == 409
        assert "already been settled" in problem(resp)["detail"]
        with pytest.raises(Conflict), atomic():
            settlement.settle(w.secretary_a, d, confirm_unrated=True)
    assert table_count("ledger_transactions", "kind = 'earn'") == 2
    assert verified()


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("member_a", 403),  # participant
        ("member_a2", 403),
        ("resident_a", 403),  # beneficiary
        ("grid_a1", 403),
        ("officer_street", 403),
        ("admin", 403),
        ("secretary_b", 404),  # other community
        ("secretary_c", 404),
        ("member_a3", 404),
        ("resident_b", 404),
    ],
)
def test_only_the_communitys_secretary_settles(api, scene, unchanged, who, status):
    d = scene.record_closed()
    with unchanged():
        resp = api.post(who, _settle_path(d), {"confirm_unrated": True})
    assert resp.status_code == status, resp.get_json()


def test_a_secretary_never_settles_a_delivery_they_served_in(scene, world, unchanged):
    boss = make_user(
        "secretary_member",
        (Role.SECRETARY, world.community_a),
        (Role.MEMBER, world.community_a),
    )
    add_team_member(scene.project, boss)
    d = scene.record_closed(participants=[(world.member_a, 2), (boss, 2)])
    with unchanged(), pytest.raises(Forbidden):
        settle_delivery(boss, d, confirm_unrated=True)
    settle_delivery(world.secretary_a, d, confirm_unrated=True)


@pytest.mark.parametrize(
    "body", [{"confirm_unrated": True, "points": 100}, {"status": "settled"}, [True]]
)
def test_bad_settle_bodies_are_422(api, scene, unchanged, body):
    d = scene.record_closed()
    with unchanged():
        resp = api.post("secretary_a", _settle_path(d), body)
    assert resp.status_code == 422


def test_malformed_settle_json_is_400(api, scene, unchanged):
    d = scene.record_closed()
    with unchanged():
        resp = api.client.post(
            _settle_path(d),
            data=b"{",
            headers={**api.headers(scene.world.secretary_a), "Content-Type": "application/json"},
        )
    assert resp.status_code == 400


def test_unknown_delivery_is_404(api, scene, unchanged):
    with unchanged():
        assert api.post("secretary_a", "/api/v1/deliveries/9999/settle", {}).status_code == 404


def test_zero_points_post_no_transaction_but_keep_the_hours(api, scene):
    w, d = scene.world, scene.delivery
    api.post(w.resident_a, f"/api/v1/deliveries/{d.id}/ratings", {"score": 1})
    resp = api.post(w.resident_a2, f"/api/v1/deliveries/{d.id}/ratings", {"score": 2})
    assert resp.get_json()["delivery_status"] == "settled"
    body = api.get(w.member_a, f"/api/v1/deliveries/{d.id}/settlement").get_json()
    assert body["multiplier"] == 0.0 and body["average_score"] == 1.5
    assert {(p["points"], p["minutes"], p["transaction_id"]) for p in body["postings"]} == {
        (0, 120, None)
    }
    assert body["total_minutes"] == 240 and body["total_points"] == 0
    assert table_count("ledger_transactions") == 0
    assert points_of(w.member_a) == {"available": 0, "held": 0, "earned_total": 0}
    kinds = {n.kind for n in db.session.query(Notification).filter_by(user_id=w.member_a.id).all()}
    assert "points.none" in kinds and "points.earned" not in kinds
    assert verified()


def test_the_policy_version_in_force_is_recorded(api, scene):
    w = scene.world
    d = scene.record_closed(length_hours=3, participants=[(w.member_a, 3)])
    with atomic():
        points_policy.new_policy_version(None, w.community_a, base_rate=20, hours_cap_minutes=120)
    resp = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True})
    body = resp.get_json()
    assert body["policy_version"] == 1 and body["policy_id"]
    (line,) = body["postings"]
    # 3 h served, 2 h count (cap), 20 points an hour, multiplier 1.0
    assert (line["minutes"], line["counted_minutes"], line["points"]) == (180, 120, 40)
    policy_id = body["policy_id"]
    with atomic():
        points_policy.new_policy_version(None, w.community_a, base_rate=50)
    again = api.get(w.secretary_a, f"/api/v1/deliveries/{d.id}/settlement").get_json()
    assert again["policy_id"] == policy_id and again["postings"][0]["points"] == 40
    tx = api.get(w.member_a, f"/api/v1/users/{w.member_a.id}/ledger").get_json()["items"][0]
    assert tx["policy_id"] == policy_id and tx["minutes"] == 180


def test_minutes_come_from_the_delivery_record(api, scene):
    w = scene.world
    d = scene.record_closed(participants=[(w.member_a, 2), (w.member_a2, 0.5)])
    body = api.post(w.secretary_a, _settle_path(d), {"confirm_unrated": True}).get_json()
    assert sorted((p["minutes"], p["points"]) for p in body["postings"]) == [(30, 5), (120, 20)]


def test_get_settlement_before_settling_is_404(api, scene):
    d = scene.delivery
    assert api.get("secretary_a", f"/api/v1/deliveries/{d.id}/settlement").status_code == 404
    assert api.get("member_b", f"/api/v1/deliveries/{d.id}/settlement").status_code == 404


# --- Idempotency-Key --------------------------------------------------------------------


def test_replay_with_the_same_key_returns_the_first_result(api, scene):
    w = scene.world
    d = scene.record_closed()
    headers = {**api.headers(w.secretary_a), "Idempotency-Key": "settle-1"}
    first = api.client.post(_settle_path(d), json={"confirm_unrated": True}, headers=headers)
    second = api.client.post(_settle_path(d), json={"confirm_unrated": True}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    different = api.client.post(_settle_path(d), json={"confirm_unrated": False}, headers=headers)
    assert different.status_code == 422
    fresh = {**headers, "Idempotency-Key": "settle-2"}
    assert (
        api.client.post(_settle_path(d), json={"confirm_unrated": True}, headers=fresh).status_code
        == 409
    )
    assert table_count("ledger_transactions") == 2
    assert verified()


def test_a_refused_settle_does_not_keep_its_key(api, scene):
    w = scene.world
    d = scene.record_closed()
    headers = {**api.headers(w.secretary_a), "Idempotency-Key": "retry-me"}
    assert api.client.post(_settle_path(d), json={}, headers=headers).status_code == 409
    ok = api.client.post(_settle_path(d), json={}, headers=headers)
    assert ok.status_code == 409  # same request, run again (not replayed), same refusal
    assert table_count("idempotency_keys") == 0


# --- the queue ---------------------------------------------------------------------------


def test_settlement_queue(api, scene):
    w = scene.world
    closed = scene.record_closed()
    rate_delivery(w.resident_a, scene.delivery, 4)
    body = api.get(w.secretary_a, "/api/v1/settlement-queue").get_json()
    assert body["total"] == 2
    first, second = body["items"]
    assert first["delivery_id"] == closed.id and first["settleable"] is True
    assert first["needs_confirmation"] is True and first["window_open"] is False
    assert second["delivery_id"] == scene.delivery.id and second["settleable"] is False
    assert (second["ratings_count"], second["beneficiaries_count"]) == (1, 2)
    assert api.get(w.secretary_b, "/api/v1/settlement-queue").get_json()["total"] == 0
    for who in ("member_a", "resident_a", "grid_a1", "officer_street"):
        assert api.get(who, "/api/v1/settlement-queue").status_code == 403
    assert api.get(w.secretary_a, "/api/v1/settlement-queue", per_page=500).status_code == 422


def test_settled_rows_and_ledger_agree(scene):
    w = scene.world
    rate_delivery(w.resident_a, scene.delivery, 5)
    rated = rate_delivery(w.resident_a2, scene.delivery, 5)
    assert rated.settlement is not None
    s = db.session.query(Settlement).one()
    assert (s.ratings_count, s.score_sum, s.total_points, s.total_minutes) == (2, 10, 48, 240)
    assert s.settled_by_id is None
    lines = db.session.query(SettlementPosting).all()
    assert {line.points for line in lines} == {24}
    assert verified()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE settlement_postings SET points = points + 1", "points differ"),
        ("UPDATE settlement_postings SET minutes = minutes + 1", "does not match its earn"),
        ("UPDATE settlements SET total_points = total_points + 5", "totals differ"),
        ("UPDATE deliveries SET status = 'awaiting_ratings'", "status and settlement"),
    ],
)
def test_ledger_verify_checks_settlements(scene, runner, sql, message):
    w = scene.world
    rate_delivery(w.resident_a, scene.delivery, 5)
    rate_delivery(w.resident_a2, scene.delivery, 4)
    assert verified()
    db.session.rollback()
    with db.engine.begin() as conn:
        conn.exec_driver_sql(sql)
    from volunteer_market.services.verify import verify

    found = verify()
    assert found is not None and found.check == "settlements" and message in found.detail
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1 and "settlements" in result.output
