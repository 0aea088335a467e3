"""The settlement contract over HTTP under gunicorn (3 workers) on a migrated demo
database: a 2-hour delivery rated 5 and 4 (average 4.5) earns round(2 x 10 x 1.2) = 24
points per participant, settled automatically by the last rating; then
`flask ledger verify` passes on the same database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .test_gunicorn import _call, ledger_verify, served  # noqa: F401 - fixture


def _token(base: str, username: str) -> str:
    status, _h, body = _call(
        base, "POST", "/api/v1/auth/token", {"username": username, "password": "demo12345"}
    )
    assert status == 201, body
    return body["token"]


def test_rating_settles_24_points_under_gunicorn(served):  # noqa: F811
    base = served
    chen = _token(base, "member_chen")
    status, _h, me = _call(base, "GET", "/api/v1/me", token=chen)
    assert status == 200
    before = me["points"]
    chen_id = me["user"]["id"]

    status, _h, page = _call(base, "GET", "/api/v1/projects?status=approved&mine=true", token=chen)
    assert status == 200
    project = next(p for p in page["items"] if p["title"] == "义务理发")

    residents = {}
    for name in ("resident_wang", "resident_li"):
        tok = _token(base, name)
        residents[name] = (tok, _call(base, "GET", "/api/v1/me", token=tok)[2]["user"]["id"])

    # Yesterday 03:00-05:00 Beijing time: always in the past (19-43 h ago, inside the
    # rating window) and clear of the demo's sessions (09:00, 14:00, 15:00 local), which
    # a fixed "now - 30 h" overlapped when the suite ran between 20:00 and 23:30 Beijing.
    beijing = ZoneInfo("Asia/Shanghai")
    yesterday = datetime.now(beijing).date() - timedelta(days=1)
    ended = datetime.combine(yesterday, time(5, 0), tzinfo=beijing).astimezone(UTC)
    body = {
        "project_id": project["id"],
        "started_at": (ended - timedelta(hours=2)).isoformat(),
        "ended_at": ended.isoformat(),
        "participants": [{"user_id": chen_id, "hours": 2}],
        "beneficiaries": [uid for _t, uid in residents.values()],
    }
    status, _h, delivery = _call(base, "POST", "/api/v1/deliveries", body, token=chen)
    assert status == 201, delivery
    assert delivery["status"] == "awaiting_ratings"

    status, _h, rating = _call(
        base,
        "POST",
        f"/api/v1/deliveries/{delivery['id']}/ratings",
        {"score": 5},
        token=residents["resident_wang"][0],
    )
    assert status == 201, rating
    status, _h, rating = _call(
        base,
        "POST",
        f"/api/v1/deliveries/{delivery['id']}/ratings",
        {"score": 4},
        token=residents["resident_li"][0],
    )
    assert status == 201, rating

    status, _h, me = _call(base, "GET", "/api/v1/me", token=chen)
    assert me["points"]["earned_total"] - before["earned_total"] == 24
    assert me["points"]["available"] - before["available"] == 24

    # a second settle (from any worker) posts nothing more
    secretary = _token(base, "secretary_lh")
    status, _h, _body = _call(
        base, "POST", f"/api/v1/deliveries/{delivery['id']}/settle", {}, token=secretary
    )
    assert status == 409
    assert (
        _call(base, "GET", "/api/v1/me", token=chen)[2]["points"]["earned_total"]
        - before["earned_total"]
        == 24
    )

    out = ledger_verify(base)
    assert out.returncode == 0, out.stdout + out.stderr
