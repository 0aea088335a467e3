"""Call-backs (回访) of proxy ratings (issue 15; DESIGN.md "a sample call-back by the
secretary"): the community's secretary sees a daily sample of recent proxy ratings with
the residents' phones (his eyes only), records confirmed / disputed / unreachable; a
dispute lets the resident appeal and shows as an integrity signal."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Notification, Rating, utcnow
from volunteer_market.services import appeals as appeal_service
from volunteer_market.services import callbacks as callback_service

from ..conftest import login, post_form
from ..factories import rate_delivery
from ..ratings.conftest import more_residents

PATH = "/api/v1/callbacks"


def proxy(scene, resident, entered_by, score=4, **kw):
    """A proxy rating of a fresh delivery for ``resident`` entered by ``entered_by``."""
    d = scene.record(beneficiaries=[resident], **kw)
    return rate_delivery(entered_by, d, score, "代评", on_behalf_of=resident.id).rating


def sample(api, who, community):
    resp = api.get(who, PATH, community_id=community.id)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def record(api, who, rating_id, outcome, note=None):
    body = {"outcome": outcome} if note is None else {"outcome": outcome, "note": note}
    return api.post(who, f"/api/v1/ratings/{rating_id}/callbacks", body)


def test_sample_is_bounded_stable_and_shows_the_phone_to_the_secretary(api, scene):
    w = scene.world
    residents = more_residents(w, 12)
    made = [proxy(scene, r, w.grid_a1, hours_ago=8 + 3 * i) for i, r in enumerate(residents)]
    proxy(scene, w.resident_a, w.grid_a1, hours_ago=60)
    rate_delivery(w.resident_a2, scene.delivery, 5)  # not a proxy: never sampled
    got = sample(api, "secretary_a", w.community_a)
    ids = [i["rating_id"] for i in got["sample"]]
    assert len(ids) == callback_service.SAMPLE_SIZE == 10
    assert ids == sorted(ids) and len(set(ids)) == 10
    db.session.rollback()
    proxies = set(db.session.scalars(sa.select(Rating.id).where(Rating.is_proxy.is_(True))))
    assert {r.id for r in made} <= proxies and set(ids) <= proxies
    assert sample(api, "secretary_a", w.community_a)["sample"] == got["sample"]  # stable today
    item = next(i for i in got["sample"])
    assert item["can_record"] is True and item["entered_by_id"] == w.grid_a1.id
    with_phone = [i for i in got["sample"] if i["resident_id"] == w.resident_a.id]
    for i in with_phone:
        assert i["resident_phone"] == "13712341234"


def test_old_and_finished_proxies_leave_the_sample(api, scene):
    w = scene.world
    old = proxy(scene, w.resident_a, w.grid_a1, hours_ago=8)
    with atomic():
        db.session.execute(
            sa.update(Rating)
            .where(Rating.id == old.id)
            .values(updated_at=utcnow() - timedelta(days=31))
        )
    fresh = proxy(scene, w.resident_a2, w.grid_a1, hours_ago=12)
    assert [i["rating_id"] for i in sample(api, "secretary_a", w.community_a)["sample"]] == [
        fresh.id
    ]
    # unreachable keeps it in the sample (call again); confirmed takes it out
    assert record(api, "secretary_a", fresh.id, "unreachable").status_code == 201
    again = sample(api, "secretary_a", w.community_a)
    assert [(i["rating_id"], i["attempts"]) for i in again["sample"]] == [(fresh.id, 1)]
    resp = record(api, "secretary_a", fresh.id, "confirmed", "居民认可")
    assert resp.status_code == 201 and resp.get_json()["outcome"] == "confirmed"
    done = sample(api, "secretary_a", w.community_a)
    assert done["sample"] == []
    assert [r["outcome"] for r in done["recorded"]] == ["confirmed", "unreachable"]
    assert record(api, "secretary_a", fresh.id, "disputed", "不认可").status_code == 409


def test_disputed_callback_opens_an_appeal_and_a_signal(api, scene):
    w = scene.world
    rating = proxy(scene, w.resident_a, w.grid_a1, hours_ago=8)
    # the proxy rating is older than the 14-day appeal window ...
    with atomic():
        db.session.execute(
            sa.update(Rating)
            .where(Rating.id == rating.id)
            .values(updated_at=utcnow() - timedelta(days=20))
        )
    with atomic():
        resident = db.session.merge(w.resident_a)
        try:
            appeal_service.file_appeal(resident, rating_id=rating.id, reason="不是我评的")
        except Exception as exc:  # noqa: BLE001
            refused = exc
    assert getattr(refused, "status", None) == 409
    # ... a disputed call-back opens it again, notifies him, and is a signal
    assert record(api, "secretary_a", rating.id, "disputed").status_code == 422  # note needed
    resp = record(api, "secretary_a", rating.id, "disputed", "居民说没有人来问过他")
    assert resp.status_code == 201, resp.get_json()
    db.session.rollback()
    note = db.session.scalars(
        sa.select(Notification).where(
            Notification.user_id == w.resident_a.id, Notification.kind == "callback.disputed"
        )
    ).one()
    assert note.object_id == rating.id
    filed = api.post("resident_a", "/api/v1/appeals", {"rating_id": rating.id, "reason": "不认可"})
    assert filed.status_code == 201, filed.get_json()
    signals = api.get("secretary_a", "/api/v1/integrity/signals", community_id=w.community_a.id)
    disputed = [s for s in signals.get_json()["items"] if s["kind"] == "disputed_callback"]
    assert disputed == [
        {
            "kind": "disputed_callback",
            "user_ids": [w.grid_a1.id, w.resident_a.id],
            "delivery_ids": [rating.delivery_id],
            "detail": {"rating_id": rating.id},
        }
    ]


def test_who_may_call_back(api, scene, unchanged):
    w = scene.world
    by_grid = proxy(scene, w.resident_a, w.grid_a1, hours_ago=8)
    by_secretary = proxy(scene, w.resident_a2, w.secretary_a, hours_ago=12)
    with unchanged():
        for who in ("member_a", "resident_a", "grid_a1", "officer_street", "admin", "secretary_b"):
            assert api.get(who, PATH, community_id=w.community_a.id).status_code == 403, who
        for who in ("member_a", "member_a2", "resident_a", "grid_a1", "officer_street", "admin"):
            resp = record(api, who, by_grid.id, "confirmed")
            assert resp.status_code == 403, who
        for who in ("secretary_b", "member_b", "resident_b"):
            assert record(api, who, by_grid.id, "confirmed").status_code == 404, who
        # nobody calls back a proxy he entered himself (the no-self-dealing rule)
        assert record(api, "secretary_a", by_secretary.id, "confirmed").status_code == 403
    mine = {
        i["rating_id"]: i["can_record"] for i in sample(api, "secretary_a", w.community_a)["sample"]
    }
    assert mine == {by_grid.id: True, by_secretary.id: False}


def test_callback_bad_input_and_wrong_state(api, scene, unchanged):
    w = scene.world
    rating = proxy(scene, w.resident_a, w.grid_a1, hours_ago=8)
    own = rate_delivery(w.resident_a2, scene.delivery, 5).rating
    with unchanged():
        path = f"/api/v1/ratings/{rating.id}/callbacks"
        for body in (
            {},
            {"outcome": "maybe"},
            {"outcome": 1},
            {"outcome": "confirmed", "note": "x" * 501},
            {"outcome": "confirmed", "extra": 1},
            {"outcome": "disputed", "note": "  "},
        ):
            assert api.post("secretary_a", path, body).status_code == 422, body
        assert record(api, "secretary_a", own.id, "confirmed").status_code == 409  # not proxy
        assert record(api, "secretary_a", 999999, "confirmed").status_code == 404
        for args in ({}, {"community_id": "x"}, {"community_id": "0"}, {"community_id": "1.5"}):
            assert api.get("secretary_a", PATH, **args).status_code == 422, args
        assert api.get("secretary_a", PATH, community_id=999999).status_code == 404
        assert api.get("secretary_a", PATH, community_id=w.areas["street"].id).status_code == 403


def test_callbacks_page(client, scene):
    w = scene.world
    rating = proxy(scene, w.resident_a, w.grid_a1, hours_ago=8)
    login(client, "secretary_a")
    html = client.get("/callbacks").get_data(as_text=True)
    assert "13712341234" in html and "代评回访" in html
    assert "style=" not in html and "<script" not in html
    bad = post_form(client, f"/callbacks/{rating.id}", {"outcome": "disputed", "note": ""})
    assert bad.status_code == 422
    ok = post_form(client, f"/callbacks/{rating.id}", {"outcome": "confirmed", "note": ""})
    assert ok.status_code == 302
    assert "属实" in client.get("/callbacks").get_data(as_text=True)
    again = post_form(client, f"/callbacks/{rating.id}", {"outcome": "confirmed"})
    assert again.status_code == 409
    assert client.get(f"/callbacks?community_id={w.community_b.id}").status_code == 404
    member = client.application.test_client()
    login(member, "member_a")
    assert member.get("/callbacks").status_code == 403
    assert "13712341234" not in member.get("/ratings").get_data(as_text=True)
    grid = client.application.test_client()
    login(grid, "grid_a1")
    assert grid.get("/callbacks").status_code == 403
    assert post_form(grid, f"/callbacks/{rating.id}", {"outcome": "confirmed"}).status_code == 403
