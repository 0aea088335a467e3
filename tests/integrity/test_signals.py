"""Integrity signals (issue 15, step 4): each kind from real data, each linking to its
deliveries; who may read them (secretary of the community, officers over it); bad
input answered 4xx; nothing changes by reading."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, DeliveryNoShow, Role, utcnow
from volunteer_market.services import users as user_service

from ..conftest import login
from ..factories import make_delivery, make_project, rate_delivery
from ..ratings.conftest import table_count

PATH = "/api/v1/integrity/signals"


def kinds(api, who, community):
    resp = api.get(who, PATH, community_id=community.id)
    assert resp.status_code == 200, resp.get_json()
    out: dict[str, list] = {}
    for s in resp.get_json()["items"]:
        out.setdefault(s["kind"], []).append(s)
    return out


def test_repeat_rater_and_all_five_streak(api, scene):
    w = scene.world
    made = [scene.record(hours_ago=6 + 4 * i, beneficiaries=[w.resident_a]) for i in range(5)]
    for d in made:
        rate_delivery(w.resident_a, d, 5)
    got = kinds(api, "secretary_a", w.community_a)
    repeat = [s for s in got["repeat_rater"] if s["user_ids"] == [w.resident_a.id, w.member_a.id]]
    assert repeat and repeat[0]["delivery_ids"] == sorted(d.id for d in made)
    assert repeat[0]["detail"] == {"count": 5}
    streak = {s["user_ids"][0]: s for s in got["all_five_streak"]}
    assert set(streak) == {w.member_a.id, w.member_a2.id}
    # one lower score ends the streak
    last = scene.record(hours_ago=40, beneficiaries=[w.resident_a2])
    rate_delivery(w.resident_a2, last, 3)
    assert "all_five_streak" not in kinds(api, "secretary_a", w.community_a)


def test_reciprocal_rating(api, scene):
    w = scene.world
    for m in (w.member_a2, w.member_a3):
        with atomic():
            user_service.grant_role(None, db.session.merge(m), Role.RESIDENT, w.areas["grid_a1"])
    other = make_project(w.member_a3, w.community_a, status="approved", title="代买菜")
    d1 = make_delivery(other, w.member_a3, beneficiaries=[w.member_a2], hours_ago=8).delivery
    d2 = make_delivery(
        scene.project,
        w.member_a,
        participants=[(w.member_a2, 1)],
        beneficiaries=[w.member_a3],
        hours_ago=12,
        length_hours=1,
    ).delivery
    rate_delivery(w.member_a2, d1, 5)
    rate_delivery(w.member_a3, d2, 5)
    got = kinds(api, "officer_street", w.community_a)
    pair = sorted([w.member_a2.id, w.member_a3.id])
    assert [s["user_ids"] for s in got["reciprocal_rating"]] == [pair]
    assert got["reciprocal_rating"][0]["delivery_ids"] == sorted([d1.id, d2.id])


def test_odd_hours_overlap_and_no_shows(api, scene):
    w = scene.world
    d = scene.delivery
    late = scene.record(hours_ago=30)
    # 23:30 in the community's time zone (Asia/Shanghai, UTC+8) is 15:30 UTC
    start = (utcnow() - timedelta(days=2)).replace(hour=15, minute=30, second=0, microsecond=0)
    with atomic():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id == late.id)
            .values(started_at=start, ended_at=start + timedelta(hours=1))
        )
        # a legacy overlap the recording guard would refuse today
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id == d.id)
            .values(started_at=start + timedelta(minutes=30), ended_at=start + timedelta(hours=2))
        )
        # well before the odd-hours window, which falls 1 to 3 days back by the clock
        for made in (scene.record(hours_ago=100 + 5 * i) for i in range(3)):
            db.session.add(DeliveryNoShow(delivery_id=made.id, user_id=w.member_a3.id))
    got = kinds(api, "secretary_a", w.community_a)
    odd = [s for s in got["odd_hours"] if s["delivery_ids"] == [late.id]]
    assert odd and odd[0]["detail"] == {"hour": 23}
    assert sorted(odd[0]["user_ids"]) == sorted([w.member_a.id, w.member_a2.id])
    overlaps = {(s["user_ids"][0], tuple(s["delivery_ids"])) for s in got["overlap"]}
    assert (w.member_a.id, (late.id, d.id)) in overlaps
    assert [s["user_ids"] for s in got["chronic_no_show"]] == [[w.member_a3.id]]
    assert len(got["chronic_no_show"][0]["delivery_ids"]) == 3


def test_rated_from_the_recorders_address(api, scene):
    """A rating entered from the address the delivery was recorded from (the audit log's
    origin); service-made ratings carry no origin and are not flagged."""
    w = scene.world
    end = utcnow() - timedelta(hours=70)
    resp = api.post(
        "member_a",
        "/api/v1/deliveries",
        {
            "project_id": scene.project.id,
            "started_at": (end - timedelta(hours=1)).isoformat(),
            "ended_at": end.isoformat(),
            "participants": [{"user_id": w.member_a.id, "hours": 1}],
            "beneficiaries": [w.resident_a.id],
        },
    )
    assert resp.status_code == 201, resp.get_json()
    did = resp.get_json()["id"]
    assert (
        api.post("resident_a", f"/api/v1/deliveries/{did}/ratings", {"score": 5}).status_code == 201
    )
    rate_delivery(w.resident_a2, scene.delivery, 5)
    got = kinds(api, "secretary_a", w.community_a)
    assert [(s["delivery_ids"], s["user_ids"]) for s in got["rated_from_recorder"]] == [
        ([did], [w.member_a.id, w.resident_a.id])
    ]


def test_who_may_read_and_bad_input(api, scene):
    w = scene.world
    for who in ("secretary_a", "officer_street", "officer_district"):
        assert api.get(who, PATH, community_id=w.community_a.id).status_code == 200, who
    for who in ("secretary_b", "officer_other", "member_a", "resident_a", "grid_a1", "admin"):
        assert api.get(who, PATH, community_id=w.community_a.id).status_code == 403, who
    assert api.get("officer_street", PATH, community_id=w.areas["street"].id).status_code == 403
    assert api.get("secretary_a", PATH).status_code == 422
    for bad in ("x", "-1", "0", str(10**12)):
        assert api.get("secretary_a", PATH, community_id=bad).status_code == 422, bad
    assert api.get("secretary_a", PATH, community_id=999999).status_code == 404
    # reading changes nothing
    before = table_count("audit_log", "action <> 'token.issue'")
    assert api.get("secretary_a", PATH, community_id=w.community_a.id).status_code == 200
    assert table_count("audit_log", "action <> 'token.issue'") == before


def test_signals_page(client, scene):
    w = scene.world
    made = [scene.record(hours_ago=6 + 4 * i, beneficiaries=[w.resident_a]) for i in range(3)]
    for d in made:
        rate_delivery(w.resident_a, d, 5)
    login(client, "secretary_a")
    page = client.get("/integrity")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "同一居民反复评价同一党员" in html and f"/deliveries/{made[0].id}" in html
    assert "style=" not in html and "<script" not in html
    assert client.get("/integrity?community_id=abc").status_code == 404
    assert client.get(f"/integrity?community_id={w.community_b.id}").status_code == 404
    member = client.application.test_client()
    login(member, "member_a")
    assert member.get("/integrity").status_code == 403
