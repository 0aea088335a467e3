"""The redemption journey over HTTP under gunicorn with 3 workers (issue 6): the
contract example (24 points, cost 10 -> 14 available / 10 held), an idempotent retry,
a stock race spread over the workers, and fulfilment on the pickup code."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid

from .test_gunicorn import _call, served  # noqa: F401 - the fixture


def _token(base: str, username: str, password: str) -> str:
    status, _h, body = _call(
        base, "POST", "/api/v1/auth/token", {"username": username, "password": password}
    )
    assert status == 201, body
    return body["token"]


def test_redemption_journey_under_gunicorn(served):  # noqa: F811
    base = served
    secretary = _token(base, "secretary_lh", "demo12345")
    status, _h, areas = _call(
        base, "GET", "/api/v1/areas?kind=community&per_page=100", token=secretary
    )
    community = next(a for a in areas["items"] if a["name"] == "龙湖东岸社区")

    name = "m" + uuid.uuid4().hex[:8]
    status, _h, user = _call(
        base,
        "POST",
        "/api/v1/users",
        {"username": name, "password": "longenough1", "display_name": "新党员"},
        token=secretary,
    )
    assert status == 201, user
    status, _h, _g = _call(
        base,
        "POST",
        f"/api/v1/users/{user['id']}/roles",
        {"role": "member", "area_id": community["id"]},
        token=secretary,
    )
    assert status == 201
    status, _h, _tx = _call(
        base,
        "POST",
        "/api/v1/adjustments",
        {"user_id": user["id"], "amount": 24, "reason": "测试：24 积分"},
        token=secretary,
    )
    assert status == 201, _tx
    status, _h, reward = _call(
        base,
        "POST",
        "/api/v1/rewards",
        {"area_id": community["id"], "name": "e2e 理发券", "cost": 10, "stock": 5},
        token=secretary,
    )
    assert status == 201, reward

    member = _token(base, name, "longenough1")
    path = f"/api/v1/rewards/{reward['id']}/redemptions"

    def keyed(key: str) -> tuple[int, dict]:
        req = urllib.request.Request(  # noqa: S310 - loopback only
            base + path, data=json.dumps({"quantity": 1}).encode(), method="POST"
        )
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {member}")
        req.add_header("Idempotency-Key", key)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:  # noqa: S310 - loopback
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, first = keyed("journey-1")
    assert status == 201 and first["status"] == "held" and len(first["pickup_code"]) == 8
    status, _h, me = _call(base, "GET", "/api/v1/me", token=member)
    assert me["points"] == {"available": 14, "held": 10, "earned_total": 0}
    status, again = keyed("journey-1")  # a retry, probably on another worker
    assert status == 201 and again == first
    status, _h, me = _call(base, "GET", "/api/v1/me", token=member)
    assert me["points"]["held"] == 10

    # 8 concurrent requests spread over the workers: the wallet (14) allows one more.
    results: list[int] = []
    lock = threading.Lock()

    def go(i: int) -> None:
        code, _body = keyed(f"race-{i}")
        with lock:
            results.append(code)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [201] + [409] * 7, results
    status, _h, me = _call(base, "GET", "/api/v1/me", token=member)
    assert me["points"] == {"available": 4, "held": 20, "earned_total": 0}
    status, _h, r = _call(base, "GET", f"/api/v1/rewards/{reward['id']}", token=secretary)
    assert r["stock"] == 3

    status, _h, done = _call(
        base,
        "POST",
        f"/api/v1/redemptions/{first['id']}/fulfil",
        {"pickup_code": first["pickup_code"]},
        token=secretary,
    )
    assert status == 200 and done["status"] == "fulfilled"
    status, _h, done = _call(
        base,
        "POST",
        f"/api/v1/redemptions/{first['id']}/fulfil",
        {"pickup_code": first["pickup_code"]},
        token=secretary,
    )
    assert status == 409
    status, _h, me = _call(base, "GET", "/api/v1/me", token=member)
    assert me["points"] == {"available": 4, "held": 10, "earned_total": 0}
