"""Real threads against one database (a SQLite file, or PostgreSQL with DATABASE_URL):
concurrent ratings settle exactly once, concurrent settles post once, concurrent
duplicates with one Idempotency-Key replay one result, a code works once."""

from __future__ import annotations

from datetime import timedelta

from volunteer_market.extensions import db
from volunteer_market.models import Settlement, utcnow

from ..factories import bearer, points_of, rate_delivery
from .conftest import more_residents, run_threads, table_count, verified


def _earns_by_member() -> dict[int, int]:
    db.session.rollback()
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT member_id, count(*) FROM ledger_transactions WHERE kind = 'earn'"
            " GROUP BY member_id"
        ).all()
    return {int(member): int(n) for member, n in rows}


def test_all_beneficiaries_rating_at_once_settle_exactly_once(app, scene):
    w = scene.world
    residents = more_residents(w, 4) + more_residents(w, 2, "grid_a2")
    d = scene.record(hours_ago=6, beneficiaries=residents)
    headers = [bearer(r) for r in residents]
    scores = [5, 5, 4, 5, 4, 5]  # average 4.67 -> 1.2 -> 24

    def work(i):
        resp = app.test_client().post(
            f"/api/v1/deliveries/{d.id}/ratings", json={"score": scores[i]}, headers=headers[i]
        )
        return resp.status_code, resp.get_json().get("delivery_status")

    results = run_threads(len(residents), work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(s for s, _d in results) == [201] * 6
    assert sorted(d for _s, d in results) == ["awaiting_ratings"] * 5 + ["settled"]
    assert table_count("settlements") == 1 and table_count("settlement_postings") == 2
    assert _earns_by_member() == {w.member_a.id: 1, w.member_a2.id: 1}
    assert points_of(w.member_a)["available"] == 24
    s = db.session.query(Settlement).one()
    assert (s.ratings_count, s.score_sum) == (6, 28)
    assert verified()


def test_all_codes_at_once(app, scene):
    w = scene.world
    residents = more_residents(w, 5)
    d = scene.record(hours_ago=6, beneficiaries=residents)
    codes = [scene.codes[r.id].code for r in residents]

    def work(i):
        resp = app.test_client().post(
            "/api/v1/ratings/by-code", json={"code": codes[i], "score": 4}
        )
        return resp.status_code

    assert run_threads(5, work) == [201] * 5
    assert table_count("settlements", "delivery_id = :d", d=d.id) == 1
    assert _earns_by_member() == {w.member_a.id: 1, w.member_a2.id: 1}
    assert verified()


def test_one_code_eight_times_at_once_rates_once(app, scene):
    code = scene.codes[scene.world.resident_a.id].code

    def work(_i):
        return (
            app.test_client()
            .post("/api/v1/ratings/by-code", json={"code": code, "score": 5})
            .status_code
        )

    results = run_threads(8, work)
    assert sorted(results) == [201] + [422] * 7, results
    assert table_count("ratings") == 1


def test_one_beneficiary_eight_times_at_once_rates_once(app, scene):
    h = bearer(scene.world.resident_a)
    path = f"/api/v1/deliveries/{scene.delivery.id}/ratings"

    def work(_i):
        return app.test_client().post(path, json={"score": 5}, headers=h).status_code

    results = run_threads(8, work)
    assert sorted(results) == [201] + [409] * 7, results
    assert table_count("ratings") == 1


def test_eight_concurrent_settles_post_one_set(app, scene):
    w = scene.world
    recorded_at = utcnow() - timedelta(days=8)
    d = scene.record(now=recorded_at)
    rate_delivery(w.resident_a, d, 5, now=recorded_at + timedelta(hours=1))
    h = bearer(w.secretary_a)

    def work(_i):
        resp = app.test_client().post(f"/api/v1/deliveries/{d.id}/settle", json={}, headers=h)
        return resp.status_code

    results = run_threads(8, work)
    assert sorted(results) == [200] + [409] * 7, results
    assert table_count("settlements") == 1
    assert _earns_by_member() == {w.member_a.id: 1, w.member_a2.id: 1}
    assert points_of(w.member_a2)["available"] == 24
    assert verified()


def test_eight_concurrent_duplicates_with_one_key_replay_one_result(app, scene):
    w = scene.world
    d = scene.record_closed()
    h = {**bearer(w.secretary_a), "Idempotency-Key": "settle-burst"}

    def work(_i):
        resp = app.test_client().post(
            f"/api/v1/deliveries/{d.id}/settle", json={"confirm_unrated": True}, headers=h
        )
        return resp.status_code, resp.get_data(), resp.headers.get("Idempotent-Replayed")

    results = run_threads(8, work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert [s for s, _b, _r in results] == [200] * 8, results
    assert len({body for _s, body, _r in results}) == 1
    assert sorted(r or "" for _s, _b, r in results) == [""] + ["true"] * 7
    assert table_count("idempotency_keys") == 1 and table_count("settlements") == 1
    assert _earns_by_member() == {w.member_a.id: 1, w.member_a2.id: 1}
    assert points_of(w.member_a)["available"] == 20
    assert verified()


def test_settles_and_ratings_of_many_deliveries_at_once(app, scene):
    """Several deliveries settling at the same time (one automatically, others by the
    secretary) never deadlock and each posts once."""
    w = scene.world
    closed = [scene.record_closed(days=8 + i) for i in range(4)]
    h_sec = bearer(w.secretary_a)
    h_res = [bearer(w.resident_a), bearer(w.resident_a2)]
    jobs = [("settle", d.id) for d in closed] * 2 + [("rate", 0), ("rate", 1)]

    def work(i):
        kind, arg = jobs[i]
        c = app.test_client()
        if kind == "settle":
            r = c.post(
                f"/api/v1/deliveries/{arg}/settle", json={"confirm_unrated": True}, headers=h_sec
            )
        else:
            r = c.post(
                f"/api/v1/deliveries/{scene.delivery.id}/ratings",
                json={"score": 5},
                headers=h_res[arg],
            )
        return kind, r.status_code

    results = run_threads(len(jobs), work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    settles = sorted(s for k, s in results if k == "settle")
    assert settles == [200] * 4 + [409] * 4
    assert sorted(s for k, s in results if k == "rate") == [201, 201]
    assert table_count("settlements") == 5
    assert _earns_by_member() == {w.member_a.id: 5, w.member_a2.id: 5}
    assert verified()


def test_a_change_racing_the_last_rating(app, scene):
    """The change lands before the settlement (counted) or after it (409) -- never lost."""
    w, d = scene.world, scene.delivery
    rid = rate_delivery(w.resident_a, d, 1).rating.id
    h1, h2 = bearer(w.resident_a), bearer(w.resident_a2)

    def work(i):
        c = app.test_client()
        if i == 0:
            return c.patch(f"/api/v1/ratings/{rid}", json={"score": 5}, headers=h1).status_code
        return c.post(
            f"/api/v1/deliveries/{d.id}/ratings", json={"score": 4}, headers=h2
        ).status_code

    change, rate = run_threads(2, work)
    assert rate == 201 and change in (200, 409)
    s = db.session.query(Settlement).one()
    assert s.score_sum == (9 if change == 200 else 5)
    assert verified()
