"""The ledger over HTTP: who sees a member's ledger, adjustments and reversals with
every refusal answered by a clear 4xx that changes nothing."""

from __future__ import annotations

import pytest

from ..factories import bearer, give_points, points_of, post_earn
from .conftest import counts


def problem(resp, status):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status
    return body


# --- GET /api/v1/users/{id}/ledger ---------------------------------------------------------


@pytest.mark.parametrize("who", ["member_a", "secretary_a", "officer_street", "officer_district"])
def test_ledger_visible_to_self_secretary_and_officers(client, world, who, delivery):
    d = delivery()
    give_points(world.member_a, 30)
    post_earn(world.member_a, world.community_a, delivery_id=d, points=24)
    resp = client.get(
        f"/api/v1/users/{world.member_a.id}/ledger", headers=bearer(getattr(world, who))
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["balances"] == {"available": 54, "held": 0, "earned_total": 24}
    assert (body["page"], body["per_page"], body["total"]) == (1, 20, 2)
    earn, adjust = body["items"]
    assert earn["kind"] == "earn" and earn["delivery_id"] == d and earn["minutes"] == 120
    assert earn["available_change"] == 24 and earn["held_change"] == 0
    assert sorted(e["amount"] for e in earn["entries"]) == [-24, 24]
    assert {e["account_kind"] for e in earn["entries"]} == {"member_available", "issuance"}
    assert adjust["kind"] == "adjust" and adjust["reason"] == "测试积分"
    assert adjust["created_at"].endswith("+00:00") and len(adjust["hash"]) == 64


@pytest.mark.parametrize(
    "who",
    [
        "member_a2",
        "member_b",
        "secretary_b",
        "secretary_c",
        "officer_other",
        "resident_a",
        "grid_a1",
        "admin",
    ],
)
def test_ledger_hidden_from_others(client, world, who):
    give_points(world.member_a, 30)
    resp = client.get(
        f"/api/v1/users/{world.member_a.id}/ledger", headers=bearer(getattr(world, who))
    )
    problem(resp, 404)


def test_ledger_unknown_user_and_no_token(client, world):
    problem(client.get("/api/v1/users/99999/ledger", headers=bearer(world.secretary_a)), 404)
    problem(client.get(f"/api/v1/users/{world.member_a.id}/ledger"), 401)


def test_ledger_pagination_and_empty(client, world):
    h = bearer(world.member_a)
    body = client.get(f"/api/v1/users/{world.member_a.id}/ledger", headers=h).get_json()
    assert body == {
        "balances": {"available": 0, "held": 0, "earned_total": 0},
        "items": [],
        "page": 1,
        "per_page": 20,
        "total": 0,
    }
    for n in range(3):
        give_points(world.member_a, n + 1)
    body = client.get(
        f"/api/v1/users/{world.member_a.id}/ledger?page=2&per_page=2", headers=h
    ).get_json()
    assert body["total"] == 3 and [i["available_change"] for i in body["items"]] == [1]
    problem(client.get(f"/api/v1/users/{world.member_a.id}/ledger?per_page=101", headers=h), 422)
    problem(client.get(f"/api/v1/users/{world.member_a.id}/ledger?page=0", headers=h), 422)


# --- POST /api/v1/adjustments -------------------------------------------------------------


def test_secretary_adjusts(client, world):
    h = bearer(world.secretary_a)
    resp = client.post(
        "/api/v1/adjustments",
        json={"user_id": world.member_a.id, "amount": 20, "reason": "  防汛值守补录 "},
        headers=h,
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    tx = resp.get_json()
    assert (tx["kind"], tx["member_id"], tx["community_id"], tx["actor_id"]) == (
        "adjust",
        world.member_a.id,
        world.community_a.id,
        world.secretary_a.id,
    )
    assert tx["reason"] == "防汛值守补录" and tx["available_change"] == 20
    resp = client.post(
        "/api/v1/adjustments",
        json={"user_id": world.member_a.id, "amount": -5, "reason": "重复登记扣回"},
        headers=h,
    )
    assert resp.status_code == 201 and resp.get_json()["available_change"] == -5
    assert points_of(world.member_a) == {"available": 15, "held": 0, "earned_total": 0}
    me = client.get("/api/v1/me", headers=bearer(world.member_a)).get_json()
    assert me["points"] == {"available": 15, "held": 0, "earned_total": 0}


def test_overdraw_is_409_and_changes_nothing(client, world):
    give_points(world.member_a, 10)
    h = bearer(world.secretary_a)
    before = counts()
    body = problem(
        client.post(
            "/api/v1/adjustments",
            json={"user_id": world.member_a.id, "amount": -11, "reason": "扣减"},
            headers=h,
        ),
        409,
    )
    assert body["detail"] == "Not enough points."
    assert counts() == before
    assert points_of(world.member_a)["available"] == 10


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "MEMBER", "amount": 5}, "reason"),
        ({"user_id": "MEMBER", "amount": 5, "reason": ""}, "reason"),
        ({"user_id": "MEMBER", "amount": 5, "reason": "   "}, "reason"),
        ({"user_id": "MEMBER", "amount": 5, "reason": "x" * 501}, "reason"),
        ({"user_id": "MEMBER", "amount": 0, "reason": "x"}, "amount"),
        ({"user_id": "MEMBER", "amount": 1.5, "reason": "x"}, "amount"),
        ({"user_id": "MEMBER", "amount": "10", "reason": "x"}, "amount"),
        ({"user_id": "MEMBER", "amount": True, "reason": "x"}, "amount"),
        ({"user_id": "MEMBER", "amount": None, "reason": "x"}, "amount"),
        ({"user_id": "MEMBER", "amount": 100_001, "reason": "x"}, "amount"),
        ({"user_id": "MEMBER", "amount": -100_001, "reason": "x"}, "amount"),
        ({"user_id": "MEMBER", "reason": "x"}, "amount"),
        ({"amount": 5, "reason": "x"}, "user_id"),
        ({"user_id": 99999, "amount": 5, "reason": "x"}, "user_id"),
        ({"user_id": "1", "amount": 5, "reason": "x"}, "user_id"),
        ({"user_id": "MEMBER", "amount": 5, "reason": "x", "community_id": 1}, "community_id"),
    ],
)
def test_adjustment_validation(client, world, body, field):
    give_points(world.member_a, 10)
    body = {k: (world.member_a.id if v == "MEMBER" else v) for k, v in body.items()}
    h = bearer(world.secretary_a)
    before = counts()
    resp = client.post("/api/v1/adjustments", json=body, headers=h)
    assert field in problem(resp, 422)["errors"]
    assert counts() == before


def test_malformed_json_is_400(client, world):
    resp = client.post(
        "/api/v1/adjustments",
        data="{not json",
        content_type="application/json",
        headers=bearer(world.secretary_a),
    )
    assert resp.status_code in (400, 422)


@pytest.mark.parametrize(
    "who",
    [
        "member_a",
        "member_a2",
        "secretary_b",
        "secretary_c",
        "officer_street",
        "officer_district",
        "admin",
        "resident_a",
        "grid_a1",
    ],
)
def test_only_the_secretary_of_the_members_community_adjusts(client, world, who):
    h = bearer(getattr(world, who))
    before = counts()
    resp = client.post(
        "/api/v1/adjustments",
        json={"user_id": world.member_a.id, "amount": 5, "reason": "x"},
        headers=h,
    )
    problem(resp, 403)
    assert counts() == before


def test_secretary_cannot_adjust_residents(client, world):
    resp = client.post(
        "/api/v1/adjustments",
        json={"user_id": world.resident_a.id, "amount": 5, "reason": "x"},
        headers=bearer(world.secretary_a),
    )
    problem(resp, 403)


def test_a_secretary_never_adjusts_their_own_points(client, world):
    """A secretary who is also a member of the community may adjust the other members,
    never themself: no action that moves points lets its actor benefit."""
    from volunteer_market.database import atomic
    from volunteer_market.models import Role
    from volunteer_market.services import users as user_service

    with atomic():
        user_service.grant_role(None, world.secretary_a, Role.MEMBER, world.community_a)
    h = bearer(world.secretary_a)
    before = counts()
    resp = client.post(
        "/api/v1/adjustments",
        json={"user_id": world.secretary_a.id, "amount": 50, "reason": "给自己加分"},
        headers=h,
    )
    problem(resp, 403)
    assert counts() == before
    assert points_of(world.secretary_a)["available"] == 0
    resp = client.post(
        "/api/v1/adjustments",
        json={"user_id": world.member_a.id, "amount": 5, "reason": "补录"},
        headers=h,
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)


# --- POST /api/v1/transactions/{id}/reverse ---------------------------------------------------


def test_reverse_over_http(client, world):
    tx = give_points(world.member_a, 30)
    h = bearer(world.secretary_a)
    resp = client.post(
        f"/api/v1/transactions/{tx.id}/reverse", json={"reason": "录错了"}, headers=h
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    rev = resp.get_json()
    assert (rev["kind"], rev["reverses_id"], rev["available_change"]) == ("reverse", tx.id, -30)
    before = counts()
    problem(
        client.post(f"/api/v1/transactions/{tx.id}/reverse", json={"reason": "again"}, headers=h),
        409,
    )
    problem(
        client.post(f"/api/v1/transactions/{rev['id']}/reverse", json={"reason": "x"}, headers=h),
        409,
    )
    assert counts() == before
    ledger = client.get(f"/api/v1/users/{world.member_a.id}/ledger", headers=h).get_json()
    assert ledger["items"][1]["reversed_by_id"] == rev["id"]


def test_reverse_refusals(client, world, delivery):
    earn = post_earn(world.member_a, world.community_a, delivery_id=delivery(), points=24)
    give_points(world.member_a, -20)  # spent most of it
    h = {
        who: bearer(getattr(world, who))
        for who in (
            "secretary_a",
            "member_a",
            "officer_street",
            "secretary_b",
            "member_a2",
            "admin",
        )
    }
    before = counts()
    url = f"/api/v1/transactions/{earn.id}/reverse"
    problem(client.post(url, json={"reason": "申诉"}, headers=h["secretary_a"]), 409)
    problem(client.post(url, json={}, headers=h["secretary_a"]), 422)
    problem(client.post(url, json={"reason": " "}, headers=h["secretary_a"]), 422)
    for who in ("member_a", "officer_street"):  # may see it, may not reverse it
        problem(client.post(url, json={"reason": "x"}, headers=h[who]), 403)
    for who in ("secretary_b", "member_a2", "admin"):  # may not even see it
        problem(client.post(url, json={"reason": "x"}, headers=h[who]), 404)
    problem(
        client.post(
            "/api/v1/transactions/99999/reverse", json={"reason": "x"}, headers=h["secretary_a"]
        ),
        404,
    )
    assert counts() == before


def test_openapi_documents_the_ledger(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/users/{user_id}/ledger" in spec["paths"]
    post = spec["paths"]["/api/v1/adjustments"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert "201" in post["responses"]
    assert "/api/v1/transactions/{tx_id}/reverse" in spec["paths"]
