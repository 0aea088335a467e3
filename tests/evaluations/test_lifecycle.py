"""Year close -> publish (公示) -> objections -> answers -> finalize over HTTP: the
whole way through, every out-of-order step refused with 409 and nothing changed,
permissions (wrong role, wrong community), bad input, corrections through the ledger,
audit and notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import (
    AuditEntry,
    Evaluation,
    EvaluationRow,
    LedgerTransaction,
    Notification,
    Objection,
    TransactionKind,
)

from ..factories import bearer, points_of
from .conftest import rows_of_report

FIGURES = ("hours", "deliveries", "points_earned", "points_spent", "points_expired")


def _post(client, user, path, body=None):
    return client.post(
        f"/api/v1{path}", json=body if body is not None else {}, headers=bearer(user)
    )


def _counts() -> dict[str, int]:
    db.session.rollback()
    return {
        m.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(m)) or 0
        for m in (Evaluation, EvaluationRow, Objection, LedgerTransaction)
    }


def _close(client, g):
    w = g.world
    resp = _post(
        client, w.secretary_a, "/evaluations", {"community_id": w.community_a.id, "year": g.year}
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_the_whole_way_through(last_year, client, clock):
    g = last_year
    w = g.world
    report = rows_of_report(client, w.secretary_a, w.community_a, g.year)
    assert any(r["points_earned"] for r in report)
    body = _close(client, g)
    assert body["status"] == "closed"
    assert [r["user_id"] for r in body["rows"]] == [r["user_id"] for r in report]
    for frozen, live in zip(body["rows"], report, strict=True):
        assert {k: frozen[k] for k in FIGURES} == {k: live[k] for k in FIGURES}
        assert frozen["rank_community"] == live["rank_community"]
    eid = body["id"]
    # Not public while closed.
    assert client.get(f"/api/v1/evaluations/{eid}", headers=bearer(w.member_a)).status_code == 404
    assert (
        client.get(f"/api/v1/evaluations/{eid}", headers=bearer(w.officer_street)).status_code
        == 200
    )
    # Publish for the default 7 days.
    pub = _post(client, w.secretary_a, f"/evaluations/{eid}/publish")
    assert pub.status_code == 200, pub.get_json()
    pub = pub.get_json()
    assert pub["status"] == "in_notice" and pub["notice_days"] == 7
    assert pub["notice_ends_at"] > pub["published_at"]
    seen = client.get(f"/api/v1/evaluations/{eid}", headers=bearer(w.resident_a)).get_json()
    assert seen["rows"] and "username" not in seen["rows"][0] and "home_unit" not in seen["rows"][0]
    assert seen["objections"] == []
    assert "13900000001" not in str(seen)
    # Objections during the notice.
    target = next(r for r in body["rows"] if r["user_id"] == w.member_a2.id)
    obj = _post(client, w.resident_a, f"/evaluations/{eid}/objections",
                {"text": "第二位党员的服务少记了一次", "user_id": w.member_a2.id})  # fmt: skip
    assert obj.status_code == 201, obj.get_json()
    assert obj.get_json()["status"] == "open"
    general = _post(client, w.member_a3, f"/evaluations/{eid}/objections", {"text": "名单顺序有误"})
    assert general.status_code == 201
    assert general.get_json()["user_id"] == w.member_a3.id  # their own row by default
    # Finalize refused while the notice runs.
    assert _post(client, w.secretary_a, f"/evaluations/{eid}/finalize").status_code == 409
    # The notice ends: no more objections; finalize still refused while one is open.
    clock.now = db.session.get(Evaluation, eid).notice_ends_at + timedelta(minutes=1)
    late = _post(client, w.member_a, f"/evaluations/{eid}/objections", {"text": "晚了"})
    assert late.status_code == 409
    assert _post(client, w.secretary_a, f"/evaluations/{eid}/finalize").status_code == 409
    # Upheld with a correction through the ledger; the frozen row is recomputed.
    before = points_of(w.member_a2)["available"]
    up = _post(client, w.secretary_a, f"/objections/{obj.get_json()['id']}/answer",
               {"decision": "upheld", "answer": "核实属实，补记积分", "amount": 15})  # fmt: skip
    assert up.status_code == 200, up.get_json()
    answered = up.get_json()
    assert answered["status"] == "upheld" and answered["transaction_id"]
    tx = db.session.get(LedgerTransaction, answered["transaction_id"])
    assert tx.kind == TransactionKind.ADJUST and tx.member_id == w.member_a2.id
    assert "异议" in tx.reason
    assert points_of(w.member_a2)["available"] == before + 15
    db.session.rollback()
    row = db.session.scalars(
        sa.select(EvaluationRow).where(
            EvaluationRow.evaluation_id == eid, EvaluationRow.user_id == w.member_a2.id
        )
    ).one()
    assert row.points_earned == target["points_earned"] + 15 and row.correction == 15
    frozen = sorted(
        (r.points_earned for r in db.session.scalars(
            sa.select(EvaluationRow).where(EvaluationRow.evaluation_id == eid)
        ) if r.rank_community is not None),
        reverse=True,
    )  # fmt: skip
    assert row.rank_community == 1 + sum(1 for p in frozen if p > row.points_earned)
    # A second answer is refused; dismiss the other with a reason.
    again = _post(client, w.secretary_a, f"/objections/{obj.get_json()['id']}/answer",
                  {"decision": "dismissed", "answer": "再次"})  # fmt: skip
    assert again.status_code == 409
    dis = _post(client, w.secretary_a, f"/objections/{general.get_json()['id']}/answer",
                {"decision": "dismissed", "answer": "名单按积分排序，无误"})  # fmt: skip
    assert dis.status_code == 200 and dis.get_json()["transaction_id"] is None
    # Final.
    fin = _post(client, w.secretary_a, f"/evaluations/{eid}/finalize")
    assert fin.status_code == 200, fin.get_json()
    assert fin.get_json()["status"] == "final"
    for step in ("publish", "finalize"):
        assert _post(client, w.secretary_a, f"/evaluations/{eid}/{step}").status_code == 409
    # Audited and notified.
    db.session.rollback()
    actions = set(db.session.scalars(sa.select(AuditEntry.action)))
    assert {"evaluation.close", "evaluation.publish", "evaluation.objection",
            "evaluation.objection_answer", "evaluation.finalize"} <= actions  # fmt: skip
    kinds = {
        (n.user_id, n.kind)
        for n in db.session.scalars(sa.select(Notification).where(Notification.object_type == "evaluation"))
    }  # fmt: skip
    assert (w.member_a.id, "evaluation.published") in kinds
    assert (w.resident_a.id, "evaluation.final") in kinds
    assert (w.secretary_a.id, "evaluation.objection_filed") in kinds
    assert (w.member_a2.id, "evaluation.objection_upheld") in kinds
    # Downloads of the list parse back.
    csv_resp = client.get(f"/api/v1/evaluations/{eid}?format=csv", headers=bearer(w.member_a))
    assert csv_resp.status_code == 200 and csv_resp.data.startswith(b"\xef\xbb\xbf")
    assert "工作单位" not in csv_resp.data.decode("utf-8-sig").splitlines()[0]


@pytest.mark.parametrize("step", ["publish", "finalize"])
def test_out_of_order_steps_are_409_and_change_nothing(last_year, client, step):
    g = last_year
    w = g.world
    eid = _close(client, g)["id"]
    if step == "publish":  # publish twice
        assert _post(client, w.secretary_a, f"/evaluations/{eid}/publish").status_code == 200
    before = _counts()
    resp = _post(client, w.secretary_a, f"/evaluations/{eid}/{step}")
    assert resp.status_code == 409, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert _counts() == before


def test_closed_list_takes_no_objection_and_no_answer(last_year, client):
    g = last_year
    w = g.world
    eid = _close(client, g)["id"]
    # A member cannot even see a closed list; the secretary cannot object.
    assert (
        _post(client, w.member_a, f"/evaluations/{eid}/objections", {"text": "x"}).status_code
        == 404
    )
    assert (
        _post(client, w.secretary_a, f"/evaluations/{eid}/objections", {"text": "x"}).status_code
        == 403
    )


def test_closing_twice_or_an_unfinished_year_is_409(last_year, client):
    g = last_year
    w = g.world
    _close(client, g)
    before = _counts()
    again = _post(
        client, w.secretary_a, "/evaluations", {"community_id": w.community_a.id, "year": g.year}
    )
    assert again.status_code == 409
    this_year = _post(
        client,
        w.secretary_a,
        "/evaluations",
        {"community_id": w.community_a.id, "year": g.year + 1},
    )
    assert this_year.status_code == 409
    future = _post(
        client,
        w.secretary_a,
        "/evaluations",
        {"community_id": w.community_a.id, "year": g.year + 5},
    )
    assert future.status_code == 409
    assert _counts() == before


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("member_a", 403),
        ("officer_street", 403),
        ("secretary_b", 403),
        ("admin", 403),
        ("grid_a1", 403),
    ],
)
def test_only_the_communitys_secretary_closes(last_year, client, who, status):
    g = last_year
    w = g.world
    before = _counts()
    resp = _post(
        client, getattr(w, who), "/evaluations", {"community_id": w.community_a.id, "year": g.year}
    )
    assert resp.status_code == status
    assert _counts() == before


def test_other_communities_see_nothing_and_cannot_act(last_year, client):
    g = last_year
    w = g.world
    eid = _close(client, g)["id"]
    assert _post(client, w.secretary_a, f"/evaluations/{eid}/publish").status_code == 200
    for user in (w.secretary_b, w.resident_b, w.member_c, w.officer_other):
        assert client.get(f"/api/v1/evaluations/{eid}", headers=bearer(user)).status_code == 404
        assert (
            _post(client, user, f"/evaluations/{eid}/objections", {"text": "外社区"}).status_code
            == 404
        )
    for user in (w.secretary_b, w.officer_street):
        assert _post(client, user, f"/evaluations/{eid}/finalize").status_code in (403, 404)
    obj = _post(client, w.member_a, f"/evaluations/{eid}/objections", {"text": "有误"}).get_json()
    before = _counts()
    for user in (w.secretary_b, w.officer_street, w.member_a2):
        resp = _post(
            client,
            user,
            f"/objections/{obj['id']}/answer",
            {"decision": "dismissed", "answer": "否"},
        )
        assert resp.status_code in (403, 404), user.username
    assert _counts() == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/evaluations", {"community_id": "x", "year": 2025}),
        ("/evaluations", {"year": 2025}),
        ("/evaluations", {"community_id": 1, "year": 1999}),
        ("/evaluations", {"community_id": 1, "year": 2025, "status": "final"}),
        ("/evaluations/{eid}/publish", {"notice_days": 0}),
        ("/evaluations/{eid}/publish", {"notice_days": 61}),
        ("/evaluations/{eid}/publish", {"notice_days": "七"}),
        ("/evaluations/{eid}/objections", {"text": ""}),
        ("/evaluations/{eid}/objections", {"text": "   "}),
        ("/evaluations/{eid}/objections", {"text": "x" * 1001}),
        ("/evaluations/{eid}/objections", {"text": "ok", "user_id": 999999}),
        ("/objections/{oid}/answer", {"decision": "maybe", "answer": "x"}),
        ("/objections/{oid}/answer", {"decision": "dismissed", "answer": ""}),
        ("/objections/{oid}/answer", {"decision": "dismissed", "answer": "x", "amount": 5}),
        ("/objections/{oid}/answer", {"decision": "upheld", "answer": "x", "amount": 0}),
        ("/objections/{oid}/answer", {"decision": "upheld", "answer": "x", "amount": 10**6}),
    ],
)
def test_bad_input_is_422_and_changes_nothing(last_year, client, path, body):
    g = last_year
    w = g.world
    eid = _close(client, g)["id"]
    if "objection" in path:
        assert _post(client, w.secretary_a, f"/evaluations/{eid}/publish").status_code == 200
    oid = None
    if "{oid}" in path:
        oid = _post(
            client, w.member_a, f"/evaluations/{eid}/objections", {"text": "有误"}
        ).get_json()["id"]
    user = w.member_a if path.endswith("objections") else w.secretary_a
    before = _counts()
    resp = _post(client, user, path.format(eid=eid, oid=oid), body)
    assert resp.status_code == 422, resp.get_json()
    assert _counts() == before


def test_malformed_json_and_unknown_ids(last_year, client):
    g = last_year
    w = g.world
    h = {**bearer(w.secretary_a), "Content-Type": "application/json"}
    assert client.post("/api/v1/evaluations", data="{", headers=h).status_code in (400, 422)
    assert _post(client, w.secretary_a, "/evaluations/999999/publish").status_code == 404
    assert (
        _post(
            client,
            w.secretary_a,
            "/objections/999999/answer",
            {"decision": "dismissed", "answer": "x"},
        ).status_code
        == 404
    )
    assert (
        client.get("/api/v1/evaluations/999999", headers=bearer(w.secretary_a)).status_code == 404
    )
    assert (
        _post(
            client, w.secretary_a, "/evaluations", {"community_id": 999999, "year": g.year}
        ).status_code
        == 404
    )
    grid = _post(
        client, w.secretary_a, "/evaluations", {"community_id": w.grid_a1.id, "year": g.year}
    )
    assert grid.status_code == 404


def test_nobody_corrects_their_own_row(last_year, client):
    g = last_year
    w = g.world
    eid = _close(client, g)["id"]
    _post(client, w.secretary_a, f"/evaluations/{eid}/publish")
    rows = client.get(f"/api/v1/evaluations/{eid}", headers=bearer(w.secretary_a)).get_json()[
        "rows"
    ]
    assert w.secretary_a.id not in {r["user_id"] for r in rows}
    obj = _post(
        client,
        w.member_a,
        f"/evaluations/{eid}/objections",
        {"text": "有误", "user_id": w.member_a.id},
    )
    before = _counts()
    # member_a is no secretary; a secretary who is on the list could not correct themself
    # (services.evaluations.answer); here: the secretary correcting member_a works only once.
    ok = _post(client, w.secretary_a, f"/objections/{obj.get_json()['id']}/answer",
               {"decision": "upheld", "answer": "属实", "amount": -1})  # fmt: skip
    assert ok.status_code == 200
    after = _counts()
    assert after["ledger_transactions"] == before["ledger_transactions"] + 1
