"""Real threads against one database (SQLite file or PostgreSQL): concurrent answers
to one objection post exactly one correction; objections racing the finalize never
leave an open objection on a final list (a finalize sent with them before the notice
ends is refused and every objection is kept)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Evaluation, Objection, ObjectionStatus, TransactionKind

from ..factories import bearer, verified
from ..ledger.conftest import IsolatedClient, run_threads


def _isolated(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


def _published(client, g):
    w = g.world
    headers = bearer(w.secretary_a)
    eid = client.post(
        "/api/v1/evaluations", json={"community_id": w.community_a.id, "year": g.year},
        headers=headers,
    ).get_json()["id"]  # fmt: skip
    assert (
        client.post(f"/api/v1/evaluations/{eid}/publish", json={}, headers=headers).status_code
        == 200
    )
    return eid, headers


def test_concurrent_answers_post_one_correction(last_year, app):
    g = last_year
    w = g.world
    client = _isolated(app)
    eid, headers = _published(client, g)
    oid = client.post(
        f"/api/v1/evaluations/{eid}/objections",
        json={"text": "少记了", "user_id": w.member_a2.id},
        headers=bearer(w.resident_a),
    ).get_json()["id"]
    db.session.rollback()
    adjusts_before = db.session.scalar(
        sa.select(sa.func.count())
        .where(sa.text("kind = 'adjust'"))
        .select_from(sa.table("ledger_transactions"))
    )

    def answer(i: int) -> int:
        resp = client.post(
            f"/api/v1/objections/{oid}/answer",
            json={"decision": "upheld", "answer": f"属实 {i}", "amount": 7},
            headers=headers,
        )
        return resp.status_code

    codes = run_threads(6, answer)
    assert sorted(codes) == [200] + [409] * 5, codes
    db.session.rollback()
    adjusts = db.session.scalar(
        sa.select(sa.func.count())
        .where(sa.text("kind = :k").bindparams(k=TransactionKind.ADJUST.value))
        .select_from(sa.table("ledger_transactions"))
    )
    assert adjusts == adjusts_before + 1
    verified()


def test_objections_racing_an_early_finalize(last_year, app, clock):
    g = last_year
    w = g.world
    client = _isolated(app)
    eid, headers = _published(client, g)
    db.session.rollback()
    ends = db.session.get(Evaluation, eid).notice_ends_at
    # Just before the end: objections may still come; finalize refuses until the end.
    clock.now = ends - timedelta(seconds=1)
    users = [w.member_a, w.member_a2, w.member_a3, w.resident_a, w.resident_a2]
    tokens = [bearer(u) for u in users]

    def act(i: int) -> int:
        if i == len(users):
            return client.post(
                f"/api/v1/evaluations/{eid}/finalize", json={}, headers=headers
            ).status_code
        return client.post(
            f"/api/v1/evaluations/{eid}/objections", json={"text": f"异议 {i}"}, headers=tokens[i]
        ).status_code

    codes = run_threads(len(users) + 1, act)
    assert codes[-1] == 409  # the notice still runs
    assert all(c == 201 for c in codes[:-1]), codes
    db.session.rollback()
    final = db.session.get(Evaluation, eid)
    assert final.status == "in_notice"
    open_count = db.session.scalar(
        sa.select(sa.func.count(Objection.id)).where(
            Objection.evaluation_id == eid, Objection.status == ObjectionStatus.OPEN
        )
    )
    assert open_count == len(users)
