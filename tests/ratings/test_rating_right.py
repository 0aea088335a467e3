"""The right to rate stays with the resident (issue 15, step 1).

A participant of a delivery -- also when he holds a grid worker or secretary role in its
community -- obtains no usable rating secret by any path (recording response and page,
delivery and ratings reads, notifications, slips API and page) and cannot rate it (for
himself, by proxy, or typing a code while signed in). Residents with an account rate from
their own session ("等您评价", ``GET /api/v1/me/pending-ratings``); slips come from the
community's secretary or a grid worker who is not on the delivery, and issuing again
voids the slips that were out.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import DeliveryBeneficiary, Rating, Role
from volunteer_market.services import users as user_service

from ..conftest import csrf_token, login
from ..factories import make_delivery
from .conftest import problem, table_count, verified

CODE_RE = re.compile(r"\b\d{6}\b")


def slips_path(d) -> str:
    return f"/api/v1/deliveries/{d.id}/rating-slips"


def give(user, role, area):
    with atomic():
        user_service.grant_role(None, db.session.merge(user), role, area)


@pytest.fixture
def insider(scene):
    """member_a2 (a participant) also holds grid worker and secretary roles in community A."""
    w = scene.world
    give(w.member_a2, Role.GRID_WORKER, w.areas["grid_a1"])
    give(w.member_a2, Role.SECRETARY, w.community_a)
    return w.member_a2


_SLOTS = iter(range(6, 200, 2))


def fresh(scene):
    """A delivery recorded without any slip (as recording now leaves it)."""
    w = scene.world
    return make_delivery(
        scene.project,
        w.member_a,
        participants=[(w.member_a, 1), (w.member_a2, 1)],
        beneficiaries=[w.resident_a, w.resident_a2],
        hours_ago=next(_SLOTS),
        length_hours=1,
        slips=False,
    ).delivery


# --- the recorder and participants see no secret ------------------------------------


def test_recording_hands_out_no_secret_even_to_staff(api, scene, insider):
    w = scene.world
    body = {
        "project_id": scene.project.id,
        "started_at": "2026-01-01T00:00:00+08:00",
        "ended_at": "2026-01-01T01:00:00+08:00",
        "participants": [{"user_id": insider.id, "hours": 1}],
        "beneficiaries": [w.resident_a.id],
    }
    from datetime import timedelta

    from volunteer_market.models import utcnow

    end = utcnow() - timedelta(hours=30)
    body["started_at"] = (end - timedelta(hours=1)).isoformat()
    body["ended_at"] = end.isoformat()
    resp = api.post(insider, "/api/v1/deliveries", body)
    assert resp.status_code == 201, resp.get_json()
    raw = resp.get_data(as_text=True)
    assert "rating_codes" not in raw and "/rate/" not in raw and "svg" not in raw
    row = db.session.scalars(
        sa.select(DeliveryBeneficiary).where(
            DeliveryBeneficiary.delivery_id == resp.get_json()["id"]
        )
    ).one()
    assert (row.rating_code_hash, row.rating_token_hash) == (None, None)


def test_participant_in_any_role_gets_no_slips(api, scene, insider, unchanged):
    d = fresh(scene)
    for who in (scene.world.member_a, insider):
        with unchanged():
            resp = api.get(who, slips_path(d))
            assert resp.status_code == 403, (who.username, resp.get_json())
    rows = db.session.scalars(
        sa.select(DeliveryBeneficiary).where(DeliveryBeneficiary.delivery_id == d.id)
    ).all()
    assert all(r.rating_code_hash is None and r.rating_token_hash is None for r in rows)


def test_recorder_who_did_not_serve_gets_no_slips(api, scene):
    """The recorder counts as a participant: a secretary role does not open slips."""
    w = scene.world
    give(w.member_a, Role.SECRETARY, w.community_a)
    d = make_delivery(
        scene.project,
        w.member_a,
        participants=[(w.member_a2, 1)],
        beneficiaries=[w.resident_a],
        hours_ago=40,
        length_hours=1,
        slips=False,
    ).delivery
    assert api.get(w.member_a, slips_path(d)).status_code == 403
    # and he may not rate by proxy either
    resp = api.post(
        w.member_a,
        f"/api/v1/deliveries/{d.id}/ratings",
        {"score": 5, "on_behalf_of": w.resident_a.id},
    )
    assert resp.status_code == 403
    assert table_count("ratings") == 0


def test_participant_staff_cannot_rate_by_proxy(api, scene, insider, unchanged):
    w, d = scene.world, scene.delivery
    with unchanged():
        resp = api.post(
            insider,
            f"/api/v1/deliveries/{d.id}/ratings",
            {"score": 5, "on_behalf_of": w.resident_a.id},
        )
        assert resp.status_code == 403, resp.get_json()


def test_participant_pages_and_reads_carry_no_secret(api, app, scene, insider):
    """Every read a participant has (API, pages, notifications) is free of codes."""
    w = scene.world
    d = fresh(scene)
    resp = api.get(w.secretary_a, slips_path(d))
    assert resp.status_code == 200, resp.get_json()
    codes = [s["code"] for s in resp.get_json()["items"]]
    tokens = [s["url"].rsplit("/", 1)[1] for s in resp.get_json()["items"]]
    secrets_ = codes + tokens
    for who in (w.member_a, insider):
        reads = [
            api.get(who, f"/api/v1/deliveries/{d.id}"),
            api.get(who, "/api/v1/deliveries"),
            api.get(who, f"/api/v1/deliveries/{d.id}/ratings"),
            api.get(who, "/api/v1/notifications"),
            api.get(who, "/api/v1/me/pending-ratings"),
        ]
        client = app.test_client()
        login(client, who.username)
        for path in ("/", f"/deliveries/{d.id}", f"/deliveries/{d.id}/ratings", "/notifications"):
            page = client.get(path)
            assert page.status_code in (200, 404), (path, page.status_code)
            reads.append(page)
        for r in reads:
            text = r.get_data(as_text=True)
            assert not any(s in text for s in secrets_), (who.username, r.request.path)
        # the slips page refuses him, GET and POST
        assert client.get(f"/deliveries/{d.id}/slips").status_code == 403
        token = csrf_token(client, f"/deliveries/{d.id}")
        assert (
            client.post(f"/deliveries/{d.id}/slips", data={"csrf_token": token}).status_code == 403
        )


def test_code_typed_in_a_participants_session_is_refused(client, scene, insider, unchanged):
    """Even holding a valid slip, a participant signed in cannot use it."""
    w, d = scene.world, scene.delivery
    code = scene.codes[w.resident_a.id].code
    login(client, insider.username)
    with unchanged():
        resp = client.post(
            "/rate",
            data={
                "code": code,
                "step": "submit",
                "score": "5",
                "comment": "",
                "csrf_token": csrf_token(client, "/rate"),
            },
        )
        assert resp.status_code == 403, resp.status_code
    assert db.session.query(Rating).filter_by(delivery_id=d.id).count() == 0


def test_code_issued_by_a_participant_never_rates(client, scene, unchanged):
    """The backstop: a slip whose issuer is on the delivery is void (say a grant changed)."""
    w, d = scene.world, scene.delivery
    code = scene.codes[w.resident_a.id].code
    with atomic():
        db.session.execute(
            sa.update(DeliveryBeneficiary)
            .where(
                DeliveryBeneficiary.delivery_id == d.id,
                DeliveryBeneficiary.user_id == w.resident_a.id,
            )
            .values(code_issued_by_id=w.member_a2.id)
        )
    with unchanged():
        resp = client.post("/api/v1/ratings/by-code", json={"code": code, "score": 5})
        assert resp.status_code == 422, resp.get_json()


# --- slips from a non-participant ---------------------------------------------------


@pytest.mark.parametrize("issuer", ["secretary_a", "grid_a1"])
def test_non_participant_issues_slips_that_work_once(api, client, scene, issuer):
    w = scene.world
    d = fresh(scene)
    resp = api.get(issuer, slips_path(d))
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_json()
    assert body["delivery_id"] == d.id and body["project_title"] == scene.project.title
    assert sorted(s["user_id"] for s in body["items"]) == sorted(
        [w.resident_a.id, w.resident_a2.id]
    )
    for s in body["items"]:
        assert len(s["code"]) == 6 and s["code"].isdigit()
        assert s["url"].startswith("http://localhost/rate/")
        assert s["qr_svg"].startswith("data:image/svg+xml")
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(DeliveryBeneficiary).where(DeliveryBeneficiary.delivery_id == d.id)
    ).all()
    assert {r.code_issued_by_id for r in rows} == {w.users[issuer].id}
    first = body["items"][0]
    ok = client.post("/api/v1/ratings/by-code", json={"code": first["code"], "score": 4})
    assert ok.status_code == 201, ok.get_json()
    again = client.post("/api/v1/ratings/by-code", json={"code": first["code"], "score": 4})
    assert again.status_code == 422
    assert verified()


def test_issuing_again_voids_the_slips_out(api, client, scene):
    w = scene.world
    d = fresh(scene)
    old = api.get(w.secretary_a, slips_path(d)).get_json()["items"]
    one = api.get(w.secretary_a, slips_path(d), user_id=w.resident_a.id)
    assert one.status_code == 200
    assert [s["user_id"] for s in one.get_json()["items"]] == [w.resident_a.id]
    old_a = next(s for s in old if s["user_id"] == w.resident_a.id)
    old_a2 = next(s for s in old if s["user_id"] == w.resident_a2.id)
    # resident_a's old slip is void, resident_a2's is still good
    assert (
        client.post("/api/v1/ratings/by-code", json={"code": old_a["code"], "score": 5}).status_code
        == 422
    )
    token = old_a["url"].rsplit("/", 1)[1]
    assert client.get(f"/rate/{token}").status_code == 404
    assert (
        client.post(
            "/api/v1/ratings/by-code", json={"code": old_a2["code"], "score": 5}
        ).status_code
        == 201
    )
    new_a = one.get_json()["items"][0]
    assert (
        client.post("/api/v1/ratings/by-code", json={"code": new_a["code"], "score": 5}).status_code
        == 201
    )
    assert verified()


def test_slips_refusals(api, scene, unchanged):
    w = scene.world
    d = fresh(scene)
    with unchanged():
        # wrong role in the community, outsiders, a beneficiary
        assert api.get(w.member_a3, slips_path(d)).status_code in (403, 404)
        assert api.get(w.resident_a, slips_path(d)).status_code == 403
        assert api.get(w.secretary_b, slips_path(d)).status_code == 404
        assert api.get(w.grid_b1, slips_path(d)).status_code == 404
        assert api.get(w.officer_street, slips_path(d)).status_code == 403
        # bad input
        r = api.get(w.secretary_a, slips_path(d), user_id=w.member_a.id)
        assert r.status_code == 422 and "user_id" in problem(r)["errors"]
        for bad in ("x", "-1", "0", str(10**12)):
            assert api.get(w.secretary_a, slips_path(d), user_id=bad).status_code == 422, bad
        assert api.get(w.secretary_a, "/api/v1/deliveries/999999/rating-slips").status_code == 404


def test_slips_409_once_rated_or_closed(api, scene):
    w = scene.world
    d = fresh(scene)
    for who in (w.resident_a, w.resident_a2):
        assert api.post(who, f"/api/v1/deliveries/{d.id}/ratings", {"score": 5}).status_code == 201
    resp = api.get(w.secretary_a, slips_path(d))
    assert resp.status_code == 409, resp.get_json()
    closed = scene.record_closed()
    assert api.get(w.secretary_a, slips_path(closed)).status_code == 409
    # one rated: that beneficiary's slip is 409, the other one still gets his
    d2 = fresh(scene)
    assert (
        api.post(w.resident_a, f"/api/v1/deliveries/{d2.id}/ratings", {"score": 4}).status_code
        == 201
    )
    assert api.get(w.secretary_a, slips_path(d2), user_id=w.resident_a.id).status_code == 409
    rest = api.get(w.secretary_a, slips_path(d2)).get_json()["items"]
    assert [s["user_id"] for s in rest] == [w.resident_a2.id]


def test_printable_slips_page(client, scene):
    d = fresh(scene)
    login(client, "grid_a1")
    page = client.get(f"/deliveries/{d.id}/slips")
    assert page.status_code == 200
    assert "pickup-code" not in page.get_data(as_text=True)
    detail = client.get(f"/deliveries/{d.id}").get_data(as_text=True)
    assert f"/deliveries/{d.id}/slips" in detail
    # no CSRF token: 400, nothing issued
    assert client.post(f"/deliveries/{d.id}/slips", data={}).status_code == 400
    token = csrf_token(client, f"/deliveries/{d.id}/slips")
    resp = client.post(f"/deliveries/{d.id}/slips", data={"csrf_token": token})
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    codes = re.findall(r'<p class="pickup-code">(\d{6})</p>', html)
    assert len(codes) == 2 and html.count('src="data:image/svg+xml') == 2
    assert "style=" not in html and "<script>" not in html  # no inline script (CSP)
    # shown once, so no redirect: the history entry becomes the GET page (static/history.js)
    assert f'<meta name="vm-replace-url" content="/deliveries/{d.id}/slips">' in html
    assert '<script src="/static/history.js" defer></script>' in html
    bad = client.post(f"/deliveries/{d.id}/slips", data={"csrf_token": token, "user_id": "abc"})
    assert bad.status_code == 422
    ok = client.post("/api/v1/ratings/by-code", json={"code": codes[0], "score": 5})
    assert ok.status_code == 201


# --- residents rate from their own session -----------------------------------------


def test_pending_ratings_and_home(api, client, scene):
    w, d = scene.world, scene.delivery
    resp = api.get(w.resident_a, "/api/v1/me/pending-ratings")
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert [i["delivery_id"] for i in items] == [d.id]
    assert items[0]["project_title"] == scene.project.title
    assert set(items[0]) == {"delivery_id", "project_title", "started_at", "rate_until"}
    login(client, "resident_a")
    home = client.get("/").get_data(as_text=True)
    assert "等您评价" in home and scene.project.title in home
    # rate from the own session: the item disappears
    assert (
        api.post(w.resident_a, f"/api/v1/deliveries/{d.id}/ratings", {"score": 5}).status_code
        == 201
    )
    assert api.get(w.resident_a, "/api/v1/me/pending-ratings").get_json()["items"] == []
    home = client.get("/").get_data(as_text=True)
    assert f"/deliveries/{d.id}/ratings" not in home and "暂时没有要评价的服务。" in home
    # a member (participant) has nothing to rate; anonymous is 401
    assert api.get(w.member_a, "/api/v1/me/pending-ratings").get_json()["items"] == []
    assert client.get("/api/v1/me/pending-ratings").status_code == 401


def test_proxy_ratings_stay_flagged(api, scene):
    w, d = scene.world, scene.delivery
    resp = api.post(
        w.grid_a1,
        f"/api/v1/deliveries/{d.id}/ratings",
        {"score": 4, "on_behalf_of": w.resident_a.id},
    )
    assert resp.status_code == 201, resp.get_json()
    rating = db.session.query(Rating).one()
    assert rating.is_proxy and rating.entered_by_id == w.grid_a1.id
