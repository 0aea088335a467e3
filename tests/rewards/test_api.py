"""/api/v1/rewards, /api/v1/redemptions, /api/v1/wallet over HTTP: the contract,
status codes, permissions (403; 404 where not visible) and refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from volunteer_market.database import atomic
from volunteer_market.services import points_policy

from ..factories import give_points, image_bytes, make_reward, redeem, same_picture
from .conftest import earn, verified

PNG = image_bytes("png")


def _multipart(data: bytes) -> dict:
    boundary = "----vm-rewards-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


# --- the contract example ----------------------------------------------------------------


def test_contract_example_over_http(api, world):
    earn(world.member_a, world.community_a, 24)
    resp = api.post(
        "secretary_a",
        "/api/v1/rewards",
        {"area_id": world.community_a.id, "name": "理发券", "cost": 10, "stock": 20},
    )
    assert resp.status_code == 201, resp.get_json()
    reward_id = resp.get_json()["id"]
    resp = api.post(
        "member_a",
        f"/api/v1/rewards/{reward_id}/redemptions",
        {"quantity": 1},
        headers={"Idempotency-Key": "first-try"},
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "held" and len(body["pickup_code"]) == 8
    assert body["pickup_url"].endswith(f"/rewards/fulfil?code={body['pickup_code']}")
    assert body["pickup_qr_svg"].startswith("data:image/svg+xml")
    assert resp.headers["Cache-Control"] == "no-store"
    me = api.get("member_a", "/api/v1/me").get_json()
    assert me["points"] == {"available": 14, "held": 10, "earned_total": 24}
    # A retry with the same key replays the first result and posts nothing.
    again = api.post(
        "member_a",
        f"/api/v1/rewards/{reward_id}/redemptions",
        {"quantity": 1},
        headers={"Idempotency-Key": "first-try"},
    )
    assert again.status_code == 201 and again.get_json() == body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert api.get("member_a", "/api/v1/me").get_json()["points"]["held"] == 10
    # Same key, other body -> 422.
    other = api.post(
        "member_a",
        f"/api/v1/rewards/{reward_id}/redemptions",
        {"quantity": 2},
        headers={"Idempotency-Key": "first-try"},
    )
    assert other.status_code == 422
    # Handed over on the code.
    done = api.post(
        "secretary_a",
        f"/api/v1/redemptions/{body['id']}/fulfil",
        {"pickup_code": body["pickup_code"]},
    )
    assert done.status_code == 200 and done.get_json()["status"] == "fulfilled"
    assert done.get_json()["pickup_code"] is None
    me = api.get("member_a", "/api/v1/me").get_json()
    assert me["points"] == {"available": 14, "held": 0, "earned_total": 24}
    verified()


# --- rewards -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, area, status",
    [
        ("secretary_a", "community_a", 201),
        ("secretary_a", "grid_a1", 201),
        ("officer_street", "street", 201),
        ("officer_street", "community_b", 201),
        ("officer_district", "district", 201),
        ("secretary_a", "community_b", 403),
        ("secretary_a", "street", 403),
        ("officer_other", "community_a", 403),
        ("member_a", "community_a", 403),
        ("resident_a", "community_a", 403),
        ("grid_a1", "community_a", 403),
        ("admin", "community_a", 403),
    ],
)
def test_who_creates_rewards(api, world, unchanged, who, area, status):
    payload = {
        "area_id": world.areas[area].id,
        "name": "体检券",
        "description": "社区医院免费体检一次",
        "cost": 100,
        "stock": 10,
        "per_member_limit": 1,
        "limit_period": "year",
        "sponsor": "社区医院",
        "active_from": "2026-01-01T00:00:00+08:00",
        "active_to": "2027-01-01T00:00:00+08:00",
    }
    if status == 201:
        resp = api.post(who, "/api/v1/rewards", payload)
        assert resp.status_code == 201, resp.get_json()
        body = resp.get_json()
        assert body["stock"] == 10 and body["limit_period"] == "year"
        assert body["sponsor"] == "社区医院" and body["retired"] is False
        assert body["active_from"].startswith("2025-12-31T16:00:00")
        verified()
    else:
        with unchanged():
            resp = api.post(who, "/api/v1/rewards", payload)
        assert resp.status_code == status


@pytest.mark.parametrize(
    "change, field",
    [
        ({"cost": 0}, "cost"),
        ({"cost": -5}, "cost"),
        ({"cost": 1.5}, "cost"),
        ({"cost": "10"}, "cost"),
        ({"cost": 10**9}, "cost"),
        ({"stock": -1}, "stock"),
        ({"per_member_limit": 0}, "per_member_limit"),
        ({"limit_period": "week"}, "limit_period"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        (
            {"active_from": "2026-02-01T00:00:00+08:00", "active_to": "2026-01-01T00:00:00+08:00"},
            "active_to",
        ),
        ({"active_from": "2026-02-01T00:00:00"}, "active_from"),
        ({"status": "active"}, "status"),
        ({"area_id": 99999}, "area_id"),
    ],
)
def test_invalid_rewards_are_422(api, world, unchanged, change, field):
    payload = {"area_id": world.community_a.id, "name": "券", "cost": 10, **change}
    with unchanged():
        resp = api.post("secretary_a", "/api/v1/rewards", payload)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]


def test_listing_shows_open_rewards_of_my_areas(api, world):
    now = datetime.now(UTC)
    mine = make_reward(world.community_a, name="A 社区券")
    street = make_reward(world.street, name="街道券")
    make_reward(world.community_b, name="B 社区券")
    make_reward(world.areas["grid_a1"], name="网格券")
    make_reward(world.community_a, name="暂停", is_active=False)
    make_reward(world.community_a, name="已过期", active_to=now - timedelta(days=1))
    resp = api.get("member_a", "/api/v1/rewards")
    assert resp.status_code == 200
    body = resp.get_json()
    assert {r["name"] for r in body["items"]} == {"A 社区券", "街道券"}
    assert body["total"] == 2 and body["page"] == 1
    resident = api.get("resident_a", "/api/v1/rewards").get_json()
    assert {r["name"] for r in resident["items"]} == {"A 社区券", "街道券", "网格券"}
    managed = api.get("secretary_a", "/api/v1/rewards", manage="true").get_json()
    assert {r["name"] for r in managed["items"]} == {"A 社区券", "网格券", "暂停", "已过期"}
    assert api.get("member_a", "/api/v1/rewards", manage="true").status_code == 403
    assert api.get("member_a", f"/api/v1/rewards/{mine.id}").status_code == 200
    assert api.get("member_c", f"/api/v1/rewards/{street.id}").status_code == 404
    assert api.get("member_b", f"/api/v1/rewards/{mine.id}").status_code == 404
    assert api.get("member_a", "/api/v1/rewards/99999").status_code == 404
    paged = api.get("secretary_a", "/api/v1/rewards", manage="true", per_page=2, page=2).get_json()
    assert len(paged["items"]) == 2 and paged["total"] == 4
    assert api.get("member_a", "/api/v1/rewards", per_page=101).status_code == 422


@pytest.mark.parametrize(
    "who, status",
    [
        ("secretary_a", 200),
        ("officer_street", 200),
        ("officer_district", 200),
        ("secretary_b", 404),
        ("officer_other", 404),
        ("member_a", 403),
        ("resident_a", 403),
        ("admin", 403),
    ],
)
def test_who_edits_rewards(api, world, unchanged, who, status):
    reward = make_reward(world.community_a, stock=5)
    if status == 200:
        resp = api.patch(who, f"/api/v1/rewards/{reward.id}", {"stock": 8, "cost": 12})
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["stock"] == 8 and resp.get_json()["cost"] == 12
        changes = api.get(who, f"/api/v1/rewards/{reward.id}/stock-changes").get_json()
        assert [c["kind"] for c in changes["items"]] == ["edit", "initial"]
        assert changes["items"][0]["stock_before"] == 5 and changes["items"][0]["actor_id"]
        verified()
    else:
        with unchanged():
            resp = api.patch(who, f"/api/v1/rewards/{reward.id}", {"stock": 8})
        assert resp.status_code == status
        assert api.get(who, f"/api/v1/rewards/{reward.id}/stock-changes").status_code == status


def test_patch_refusals(api, world, unchanged):
    reward = make_reward(world.community_a, stock=5)
    for body in (
        {"stock": -2},
        {"area_id": world.community_b.id},
        {"cost": 0},
        {"retired_at": None},
    ):
        with unchanged():
            resp = api.patch("secretary_a", f"/api/v1/rewards/{reward.id}", body)
        assert resp.status_code == 422, body
    assert api.patch("secretary_a", "/api/v1/rewards/99999", {"cost": 5}).status_code == 404
    resp = api.patch("secretary_a", f"/api/v1/rewards/{reward.id}", {"stock": None})
    assert resp.status_code == 200 and resp.get_json()["stock"] is None
    assert api.post("member_a", f"/api/v1/rewards/{reward.id}/retire").status_code == 403
    assert api.post("secretary_b", f"/api/v1/rewards/{reward.id}/retire").status_code == 404
    resp = api.post("secretary_a", f"/api/v1/rewards/{reward.id}/retire")
    assert resp.status_code == 200 and resp.get_json()["retired"] is True
    with unchanged():
        assert api.post("secretary_a", f"/api/v1/rewards/{reward.id}/retire").status_code == 409
        assert (
            api.patch("secretary_a", f"/api/v1/rewards/{reward.id}", {"cost": 5}).status_code == 409
        )
    verified()


def test_reward_images(api, world):
    reward = make_reward(world.community_a)
    assert (
        api.put("member_a", f"/api/v1/rewards/{reward.id}/image", **_multipart(PNG)).status_code
        == 403
    )
    assert (
        api.put(
            "secretary_a", f"/api/v1/rewards/{reward.id}/image", **_multipart(b"GIF89a")
        ).status_code
        == 422
    )
    resp = api.put("secretary_a", f"/api/v1/rewards/{reward.id}/image", **_multipart(PNG))
    assert (
        resp.status_code == 200
        and resp.get_json()["image_url"] == f"/api/v1/rewards/{reward.id}/image"
    )
    img = api.get("member_a", f"/api/v1/rewards/{reward.id}/image")
    assert img.status_code == 200 and same_picture(img.data, PNG) and img.mimetype == "image/png"
    img.close()
    assert api.get("member_b", f"/api/v1/rewards/{reward.id}/image").status_code == 404


# --- redemptions ------------------------------------------------------------------------------


def _redeem(api, who, reward_id, body, key=None):
    headers = {"Idempotency-Key": key} if key else None
    return api.post(who, f"/api/v1/rewards/{reward_id}/redemptions", body, headers=headers)


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": 0},
        {"quantity": -1},
        {"quantity": 101},
        {"quantity": 10**20},
        {"quantity": 1.5},
        {"quantity": "1"},
        {"quantity": True},
        {"quantity": None},
        {},
        {"quantity": 1, "member_id": 3},
        {"quantity": 1, "status": "fulfilled"},
    ],
)
def test_bad_quantities_are_422_and_change_nothing(api, world, unchanged, body):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, stock=5)
    with unchanged():
        resp = _redeem(api, "member_a", reward.id, body, key="k1")
    # an integer of more than 20 digits is refused by the JSON loader itself (400)
    expected = 400 if body.get("quantity") == 10**20 else 422
    assert resp.status_code == expected, resp.get_json()


def test_malformed_json_is_400(api, world, unchanged):
    reward = make_reward(world.community_a)
    with unchanged():
        resp = api.client.post(
            f"/api/v1/rewards/{reward.id}/redemptions",
            data="{not json",
            content_type="application/json",
            headers=api.headers(world.member_a),
        )
    assert resp.status_code in (400, 422)
    assert resp.mimetype == "application/problem+json"


def test_refused_redemptions_are_clear_and_change_nothing(api, world, unchanged):
    give_points(world.member_a, 25)
    now = datetime.now(UTC)
    cheap = make_reward(world.community_a, cost=10, stock=1)
    dear = make_reward(world.community_a, name="贵", cost=30)
    limited = make_reward(world.community_a, name="限一", cost=1, per_member_limit=1)
    retired = make_reward(world.community_a, name="下架")
    api.post("secretary_a", f"/api/v1/rewards/{retired.id}/retire")
    future = make_reward(world.community_a, name="未开始", active_from=now + timedelta(days=3))
    past = make_reward(world.community_a, name="已结束", active_to=now - timedelta(hours=1))
    other = make_reward(world.community_b, name="B 券")
    assert _redeem(api, "member_a", cheap.id, {"quantity": 1}).status_code == 201
    assert _redeem(api, "member_a", limited.id, {"quantity": 1}).status_code == 201
    cases = [
        (cheap.id, 409, "left"),  # stock
        (dear.id, 409, "points"),  # balance
        (limited.id, 409, "at most"),  # limit
        (retired.id, 409, "retired"),
        (future.id, 409, "not open"),
        (past.id, 409, "no longer"),
        (other.id, 404, None),
        (99999, 404, None),
    ]
    for reward_id, status, words in cases:
        with unchanged():
            resp = _redeem(api, "member_a", reward_id, {"quantity": 1}, key=f"k{reward_id}")
        assert resp.status_code == status, (reward_id, resp.get_json())
        assert resp.mimetype == "application/problem+json"
        if words:
            assert words in resp.get_json()["detail"]
    for who in ("resident_a", "secretary_a", "grid_a1", "officer_street"):
        with unchanged():
            assert _redeem(api, who, cheap.id, {"quantity": 1}).status_code == 403
    verified()


def test_fulfil_cancel_reject_over_http(api, world, unchanged):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, cost=10, stock=10)
    a = _redeem(api, "member_a", reward.id, {"quantity": 2}).get_json()
    b = _redeem(api, "member_a", reward.id, {"quantity": 1}).get_json()
    c = _redeem(api, "member_a", reward.id, {"quantity": 1}).get_json()
    wrong = f"{(int(a['pickup_code']) + 1) % 10**8:08d}"
    # a wrong code is refused and counted (tests/security/test_pickup_lockout.py)
    resp = api.post("secretary_a", f"/api/v1/redemptions/{a['id']}/fulfil", {"pickup_code": wrong})
    assert resp.status_code == 422
    for who, body, status in [
        ("secretary_a", {"pickup_code": "12"}, 422),
        ("secretary_a", {}, 422),
        ("secretary_b", {"pickup_code": a["pickup_code"]}, 404),
        ("officer_street", {"pickup_code": a["pickup_code"]}, 403),
        ("member_a", {"pickup_code": a["pickup_code"]}, 403),
        ("member_a2", {"pickup_code": a["pickup_code"]}, 404),
    ]:
        with unchanged():
            resp = api.post(who, f"/api/v1/redemptions/{a['id']}/fulfil", body)
        assert resp.status_code == status, (who, body, resp.get_json())
    resp = api.post(
        "secretary_a", f"/api/v1/redemptions/{a['id']}/fulfil", {"pickup_code": a["pickup_code"]}
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "fulfilled"
    with unchanged():  # fulfilling twice
        resp = api.post(
            "secretary_a",
            f"/api/v1/redemptions/{a['id']}/fulfil",
            {"pickup_code": a["pickup_code"]},
        )
        assert resp.status_code == 409
        assert api.post("member_a", f"/api/v1/redemptions/{a['id']}/cancel", {}).status_code == 409
    # cancel: the member or the secretary; others 404
    for who, status in [("member_a2", 404), ("secretary_b", 404), ("officer_street", 403)]:
        with unchanged():
            assert api.post(who, f"/api/v1/redemptions/{b['id']}/cancel", {}).status_code == status
    resp = api.post("member_a", f"/api/v1/redemptions/{b['id']}/cancel", {})
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    # reject: the secretary, with a reason
    with unchanged():
        assert (
            api.post("secretary_a", f"/api/v1/redemptions/{c['id']}/reject", {}).status_code == 422
        )
        assert (
            api.post(
                "secretary_a", f"/api/v1/redemptions/{c['id']}/reject", {"reason": " "}
            ).status_code
            == 422
        )
        assert (
            api.post(
                "member_a", f"/api/v1/redemptions/{c['id']}/reject", {"reason": "x"}
            ).status_code
            == 403
        )
    resp = api.post(
        "secretary_a", f"/api/v1/redemptions/{c['id']}/reject", {"reason": "库存盘点有误"}
    )
    assert resp.status_code == 200 and resp.get_json()["reason"] == "库存盘点有误"
    assert api.get("member_a", "/api/v1/me").get_json()["points"] == {
        "available": 80,
        "held": 0,
        "earned_total": 0,
    }
    assert api.get("secretary_a", f"/api/v1/rewards/{reward.id}").get_json()["stock"] == 8
    assert api.post("secretary_a", "/api/v1/redemptions/99999/cancel", {}).status_code == 404
    verified()


def test_listing_redemptions(api, world):
    give_points(world.member_a, 100)
    give_points(world.member_b, 100)
    ra = make_reward(world.community_a)
    rb = make_reward(world.community_b)
    street = make_reward(world.street, name="街道券")
    mine = redeem(world.member_a, ra)
    redeem(world.member_a, street)
    theirs = redeem(world.member_b, rb)
    body = api.get("member_a", "/api/v1/redemptions").get_json()
    assert body["total"] == 2
    assert all(i["pickup_code"] for i in body["items"])
    sec = api.get("secretary_a", "/api/v1/redemptions").get_json()
    assert sec["total"] == 2 and all(i["pickup_code"] is None for i in sec["items"])
    assert api.get("secretary_b", "/api/v1/redemptions").get_json()["total"] == 1
    assert api.get("officer_street", "/api/v1/redemptions").get_json()["total"] == 3
    assert api.get("officer_other", "/api/v1/redemptions").get_json()["total"] == 0
    assert api.get("secretary_a", "/api/v1/redemptions", mine="true").get_json()["total"] == 0
    assert (
        api.get("member_a", "/api/v1/redemptions", status="held", reward_id=ra.id).get_json()[
            "total"
        ]
        == 1
    )
    assert api.get("member_a", "/api/v1/redemptions", status="nope").status_code == 422
    one = api.get("member_a", f"/api/v1/redemptions/{mine.redemption.id}")
    assert one.status_code == 200 and one.get_json()["pickup_code"] == mine.pickup_code
    assert one.headers["Cache-Control"] == "no-store"
    assert (
        api.get("secretary_a", f"/api/v1/redemptions/{mine.redemption.id}").get_json()[
            "pickup_code"
        ]
        is None
    )
    for who in ("member_a2", "secretary_b", "officer_other", "resident_a"):
        assert api.get(who, f"/api/v1/redemptions/{mine.redemption.id}").status_code == 404
    assert api.get("member_a", f"/api/v1/redemptions/{theirs.redemption.id}").status_code == 404


def test_wallet_shows_expiring_points(api, world):
    earn(world.member_a, world.community_a, 30)
    body = api.get("member_a", "/api/v1/wallet").get_json()
    assert body == {"available": 30, "held": 0, "earned_total": 30, "expiring": None}
    with atomic():
        points_policy.new_policy_version(None, world.community_a, expiry_rule="end_of_next_year")
    body = api.get("member_a", "/api/v1/wallet").get_json()
    assert body["expiring"]["amount"] == 0  # earned this year: expires at the end of next year
    assert body["expiring"]["expires_on"].endswith("-12-31")


def test_unauthenticated_is_401(client, world):
    for method, path in [
        ("get", "/api/v1/rewards"),
        ("post", "/api/v1/rewards"),
        ("get", "/api/v1/redemptions"),
        ("post", "/api/v1/redemptions/1/fulfil"),
        ("get", "/api/v1/wallet"),
    ]:
        assert getattr(client, method)(path).status_code == 401


def test_openapi_lists_the_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/rewards",
        "/api/v1/rewards/{reward_id}",
        "/api/v1/rewards/{reward_id}/redemptions",
        "/api/v1/redemptions",
        "/api/v1/redemptions/{redemption_id}/fulfil",
        "/api/v1/redemptions/{redemption_id}/cancel",
        "/api/v1/redemptions/{redemption_id}/reject",
        "/api/v1/wallet",
    ):
        assert path in paths, path


@pytest.mark.parametrize("who", ["secretary_b", "member_b", "officer_other"])
def test_other_communities_get_404_on_every_endpoint(api, world, unchanged, who):
    give_points(world.member_a, 100)
    reward = make_reward(world.community_a, stock=3)
    issued = redeem(world.member_a, reward)
    rid = issued.redemption.id
    for path in (
        f"/api/v1/rewards/{reward.id}",
        f"/api/v1/rewards/{reward.id}/image",
        f"/api/v1/rewards/{reward.id}/stock-changes",
        f"/api/v1/redemptions/{rid}",
    ):
        assert api.get(who, path).status_code == 404, path
    with unchanged():
        for method, path, body in (
            ("patch", f"/api/v1/rewards/{reward.id}", {"cost": 1}),
            ("post", f"/api/v1/rewards/{reward.id}/retire", None),
            ("post", f"/api/v1/rewards/{reward.id}/redemptions", {"quantity": 1}),
            ("post", f"/api/v1/redemptions/{rid}/fulfil", {"pickup_code": issued.pickup_code}),
            ("post", f"/api/v1/redemptions/{rid}/cancel", {}),
            ("post", f"/api/v1/redemptions/{rid}/reject", {"reason": "x"}),
        ):
            assert getattr(api, method)(who, path, body).status_code == 404, path


def test_absurd_ids_are_404_not_500(api, world):
    huge = 10**20
    assert api.get("member_a", f"/api/v1/rewards/{huge}").status_code == 404
    assert api.get("member_a", f"/api/v1/redemptions/{huge}").status_code == 404
    assert (
        api.post("member_a", f"/api/v1/rewards/{huge}/redemptions", {"quantity": 1}).status_code
        == 404
    )
    assert api.post("secretary_a", f"/api/v1/redemptions/{huge}/cancel", {}).status_code == 404
