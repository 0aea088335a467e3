"""Appeals (申诉) end to end (issue 15, step 3): filing within 14 days, one open appeal
per subject, the officer of the street above decides (never a party, never the
secretary who settled), upheld posts a reversing or adjusting transaction with the
appeal as its reason, dismissed posts nothing, one decision per appeal under real
concurrency, both sides notified, ``ledger verify`` clean afterwards; and the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Appeal, LedgerTransaction, Rating, Role, utcnow
from volunteer_market.services import users as user_service

from ..conftest import csrf_token, login
from ..factories import bearer, points_of, rate_delivery, settle_delivery
from ..ratings.conftest import problem, run_threads, table_count, verified


def settled(scene, scores=(5, 2)):
    """Both residents rate (the last settles); return the delivery and the ratings."""
    w, d = scene.world, scene.delivery
    rate_delivery(w.resident_a, d, scores[0])
    rate_delivery(w.resident_a2, d, scores[1])
    ratings = db.session.scalars(sa.select(Rating).where(Rating.delivery_id == d.id)).all()
    return d, {r.beneficiary_id: r for r in ratings}


def earn_of(member_id: int, delivery_id: int) -> LedgerTransaction:
    return db.session.scalars(
        sa.select(LedgerTransaction).where(
            LedgerTransaction.member_id == member_id,
            LedgerTransaction.delivery_id == delivery_id,
            LedgerTransaction.kind == "earn",
        )
    ).one()


def tx_count() -> int:
    return table_count("ledger_transactions")


def kinds_of(api, who) -> list[str]:
    return [n["kind"] for n in api.get(who, "/api/v1/notifications").get_json()["items"]]


def file(api, who, **body):
    return api.post(who, "/api/v1/appeals", {"reason": "评分不公", **body})


# --- filing ----------------------------------------------------------------------------


def test_member_appeals_a_rating_and_the_officer_adjusts(api, scene):
    w = scene.world
    d, ratings = settled(scene)
    resp = file(api, "member_a", rating_id=ratings[w.resident_a2.id].id)
    assert resp.status_code == 201, resp.get_json()
    a = resp.get_json()
    assert a["status"] == "open" and a["member_id"] == w.member_a.id
    assert a["delivery_id"] == d.id and a["transaction_id"] is None
    assert "appeal.filed" in kinds_of(api, "secretary_a")
    before = points_of(w.member_a)["available"]
    path = f"/api/v1/appeals/{a['id']}/decide"
    got = api.post(
        "officer_street", path, {"decision": "upheld", "reason": "评分有误", "amount": 6}
    )
    assert got.status_code == 200, got.get_json()
    out = got.get_json()
    assert out["status"] == "upheld" and out["transaction_id"] is not None
    tx = db.session.get(LedgerTransaction, out["transaction_id"])
    assert tx.kind == "adjust" and tx.member_id == w.member_a.id
    assert f"申诉 #{a['id']}" in tx.reason
    assert points_of(w.member_a)["available"] == before + 6
    # one decision per appeal
    again = api.post("officer_district", path, {"decision": "dismissed", "reason": "重复"})
    assert again.status_code == 409
    for who in ("member_a", "secretary_a"):
        assert "appeal.decided" in kinds_of(api, who)
    assert verified()


def test_filing_refusals(api, scene, unchanged):
    w = scene.world
    d, ratings = settled(scene)
    rid = ratings[w.resident_a.id].id
    with unchanged():
        # a resident whose own (non-proxy) rating it is, an outsider, staff
        assert file(api, "resident_a", rating_id=rid).status_code == 403
        assert file(api, "member_b", rating_id=rid).status_code == 404
        assert file(api, "member_a3", rating_id=rid).status_code == 404
        assert file(api, "secretary_a", rating_id=rid).status_code == 403
        # bad input
        for body in (
            {},
            {"rating_id": rid, "transaction_id": 1},
            {"rating_id": "x"},
            {"rating_id": 10**12},
            {"rating_id": -1},
        ):
            r = api.post("member_a", "/api/v1/appeals", {"reason": "x", **body})
            assert r.status_code == 422, (body, r.get_json())
        assert api.post("member_a", "/api/v1/appeals", {"rating_id": rid}).status_code == 422
        r = api.post("member_a", "/api/v1/appeals", {"rating_id": rid, "reason": "  "})
        assert r.status_code == 422
        r = api.post("member_a", "/api/v1/appeals", {"rating_id": rid, "reason": "长" * 501})
        assert r.status_code == 422
        assert file(api, "member_a", rating_id=999999).status_code == 404
        assert file(api, "member_a", transaction_id=999999).status_code == 404
    # another member's points award is not his to appeal
    tx = earn_of(w.member_a2.id, d.id)
    assert file(api, "member_a", transaction_id=tx.id).status_code == 404
    # a second open appeal about the same thing
    assert file(api, "member_a", rating_id=rid).status_code == 201
    r = file(api, "member_a", rating_id=rid)
    assert r.status_code == 409 and "open appeal" in problem(r)["detail"]
    assert table_count("appeals") == 1


def test_appeals_close_after_14_days(api, scene):
    from volunteer_market.services import appeals as appeal_service
    from volunteer_market.services.errors import Conflict

    w = scene.world
    d, ratings = settled(scene)
    old = utcnow() - timedelta(days=15)
    with atomic():
        db.session.execute(sa.update(Rating).values(updated_at=old))
    assert file(api, "member_a", rating_id=ratings[w.resident_a.id].id).status_code == 409
    # the ledger is append-only: the award's window is checked at a later "now"
    tx = earn_of(w.member_a.id, d.id)
    member = db.session.merge(w.member_a)
    with pytest.raises(Conflict), atomic():
        appeal_service.file_appeal(
            member, transaction_id=tx.id, reason="晚了", now=utcnow() + timedelta(days=15)
        )
    with atomic():
        inside = appeal_service.file_appeal(
            member, transaction_id=tx.id, reason="及时", now=utcnow() + timedelta(days=13)
        )
    assert inside.status.value == "open"


# --- deciding --------------------------------------------------------------------------


def test_upheld_award_appeal_reverses_it_and_dismissal_posts_nothing(api, scene):
    w = scene.world
    d, _r = settled(scene)
    tx = earn_of(w.member_a.id, d.id)
    earned = points_of(w.member_a)["available"]
    assert earned > 0
    a = file(api, "member_a", transaction_id=tx.id).get_json()
    assert a["appealed_transaction_id"] == tx.id
    b = file(api, "member_a2", transaction_id=earn_of(w.member_a2.id, d.id).id).get_json()
    n = tx_count()
    r = api.post(
        "officer_street",
        f"/api/v1/appeals/{b['id']}/decide",
        {"decision": "dismissed", "reason": "证据不足"},
    )
    assert r.status_code == 200 and r.get_json()["transaction_id"] is None
    assert tx_count() == n
    r = api.post(
        "officer_street",
        f"/api/v1/appeals/{a['id']}/decide",
        {"decision": "upheld", "reason": "当日未到场"},
    )
    assert r.status_code == 200, r.get_json()
    rev = db.session.get(LedgerTransaction, r.get_json()["transaction_id"])
    assert rev.kind == "reverse" and rev.reverses_id == tx.id
    assert points_of(w.member_a)["available"] == 0  # his only award, reversed
    assert verified()


def test_resident_appeals_a_proxy_rating_made_in_her_name(api, scene):
    w, d = scene.world, scene.delivery
    for res in (w.resident_a, w.resident_a2):
        rate_delivery(w.grid_a1, d, 5, on_behalf_of=res.id)
    rid = db.session.scalars(
        sa.select(Rating.id).where(Rating.beneficiary_id == w.resident_a.id)
    ).one()
    assert file(api, "resident_a2", rating_id=rid).status_code == 403  # not in her name
    a = file(api, "resident_a", rating_id=rid).get_json()
    assert a["member_id"] is None
    path = f"/api/v1/appeals/{a['id']}/decide"
    bad = api.post("officer_street", path, {"decision": "upheld", "reason": "x", "amount": 5})
    assert bad.status_code == 422
    r = api.post("officer_street", path, {"decision": "upheld", "reason": "代评不实"})
    assert r.status_code == 200, r.get_json()
    assert points_of(w.member_a)["available"] == 0
    assert points_of(w.member_a2)["available"] == 0
    assert "appeal.decided" in kinds_of(api, "resident_a")
    assert verified()


def test_deciding_refusals(api, scene, unchanged):
    w = scene.world
    _d, ratings = settled(scene)
    a = file(api, "member_a", rating_id=ratings[w.resident_a2.id].id).get_json()
    path = f"/api/v1/appeals/{a['id']}/decide"
    ok = {"decision": "upheld", "reason": "评分有误", "amount": 5}
    with unchanged():
        assert api.post("secretary_a", path, ok).status_code == 403
        assert api.post("member_a", path, ok).status_code == 403
        assert api.post("officer_other", path, ok).status_code == 404
        assert api.post("secretary_b", path, ok).status_code == 404
        for body in (
            {**ok, "decision": "maybe"},
            {**ok, "amount": 0},
            {**ok, "amount": 10**6},
            {**ok, "amount": "x"},
            {"decision": "upheld", "reason": "无金额"},  # a member's rating appeal needs one
            {"decision": "dismissed", "reason": "x", "amount": 5},
            {"decision": "upheld", "amount": 5},
            {**ok, "other": 1},
        ):
            r = api.post("officer_street", path, body)
            assert r.status_code == 422, (body, r.get_json())
        assert api.post("officer_street", "/api/v1/appeals/999999/decide", ok).status_code == 404


def test_the_settling_secretary_never_decides_even_as_officer(api, scene):
    w = scene.world
    with atomic():
        user_service.grant_role(
            w.admin, db.session.merge(w.secretary_a), Role.OFFICER, w.areas["street"]
        )
    d = scene.record_closed()
    settle_delivery(w.secretary_a, d, confirm_unrated=True)
    tx = earn_of(w.member_a.id, d.id)
    a = file(api, "member_a", transaction_id=tx.id).get_json()
    path = f"/api/v1/appeals/{a['id']}/decide"
    assert (
        api.post("secretary_a", path, {"decision": "dismissed", "reason": "x"}).status_code == 403
    )
    assert (
        api.post("officer_district", path, {"decision": "dismissed", "reason": "x"}).status_code
        == 200
    )


def test_a_participant_who_is_officer_never_decides(api, scene):
    w = scene.world
    with atomic():
        user_service.grant_role(
            w.admin, db.session.merge(w.member_a2), Role.OFFICER, w.areas["street"]
        )
    _d, ratings = settled(scene)
    a = file(api, "member_a", rating_id=ratings[w.resident_a.id].id).get_json()
    r = api.post(
        "member_a2",
        f"/api/v1/appeals/{a['id']}/decide",
        {"decision": "upheld", "reason": "x", "amount": 3},
    )
    assert r.status_code == 403


def test_one_decision_under_real_concurrency(app, scene):
    w = scene.world
    _d, ratings = settled(scene)
    with atomic():
        from volunteer_market.services import appeals as appeal_service

        appeal = appeal_service.file_appeal(
            db.session.merge(w.member_a), rating_id=ratings[w.resident_a2.id].id, reason="不公"
        )
        appeal_id = appeal.id
    deciders = [w.officer_street, w.officer_district] * 2
    headers = [bearer(u) for u in deciders]
    before = points_of(w.member_a)["available"]

    def work(i):
        resp = app.test_client().post(
            f"/api/v1/appeals/{appeal_id}/decide",
            json={"decision": "upheld", "reason": f"裁决{i}", "amount": 7},
            headers=headers[i],
        )
        return resp.status_code

    results = run_threads(len(deciders), work)
    assert sorted(results) == [200, 409, 409, 409], results
    db.session.rollback()
    assert points_of(w.member_a)["available"] == before + 7
    assert table_count("ledger_transactions", "reason LIKE :r", r=f"申诉 #{appeal_id}%") == 1
    assert verified()


# --- lists and pages -------------------------------------------------------------------


def test_lists_by_role(api, scene):
    w = scene.world
    _d, ratings = settled(scene)
    a = file(api, "member_a", rating_id=ratings[w.resident_a.id].id).get_json()

    def ids(who, **q):
        return [x["id"] for x in api.get(who, "/api/v1/appeals", **q).get_json()["items"]]

    assert ids("member_a") == [a["id"]]
    assert ids("secretary_a") == [a["id"]]
    assert ids("officer_street") == [a["id"]]
    assert ids("officer_street", status="upheld") == []
    assert ids("officer_street", community_id=w.community_a.id) == [a["id"]]
    for who in ("member_a2", "secretary_b", "officer_other", "resident_a"):
        assert ids(who) == [], who
    assert api.get("officer_other", f"/api/v1/appeals/{a['id']}").status_code == 404
    assert api.get("officer_street", "/api/v1/appeals", status="nope").status_code == 422


def test_pages_file_and_decide(app, client, scene):
    w = scene.world
    _d, ratings = settled(scene)
    rid = ratings[w.resident_a2.id].id
    login(client, "member_a")
    form = client.get(f"/appeals/new?rating_id={rid}")
    assert form.status_code == 200
    assert client.post("/appeals/new", data={"rating_id": rid, "reason": "x"}).status_code == 400
    token = csrf_token(client, f"/appeals/new?rating_id={rid}")
    empty = client.post("/appeals/new", data={"rating_id": rid, "reason": "", "csrf_token": token})
    assert empty.status_code == 422
    resp = client.post(
        "/appeals/new", data={"rating_id": rid, "reason": "评分不公", "csrf_token": token}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    db.session.rollback()
    appeal = db.session.scalars(sa.select(Appeal)).one()
    assert "评分不公" in client.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert str(appeal.id) in client.get("/appeals").get_data(as_text=True)
    again = client.post(
        "/appeals/new", data={"rating_id": rid, "reason": "再来", "csrf_token": token}
    )
    assert again.status_code == 409
    client = app.test_client()
    login(client, "officer_street")
    page = client.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert "提交裁决" in page and "style=" not in page and "<script" not in page
    token = csrf_token(client, f"/appeals/{appeal.id}")
    bad = client.post(
        f"/appeals/{appeal.id}/decide",
        data={"decision": "upheld", "reason": "有误", "amount": "abc", "csrf_token": token},
    )
    assert bad.status_code == 422
    ok = client.post(
        f"/appeals/{appeal.id}/decide",
        data={"decision": "upheld", "reason": "有误", "amount": "4", "csrf_token": token},
    )
    assert ok.status_code == 302
    db.session.rollback()
    assert db.session.get(Appeal, appeal.id).status.value == "upheld"
    client = app.test_client()
    login(client, "secretary_a")
    assert (
        client.post(
            f"/appeals/{appeal.id}/decide",
            data={
                "decision": "dismissed",
                "reason": "x",
                "csrf_token": csrf_token(client, "/appeals"),
            },
        ).status_code
        == 403
    )
    assert verified()
