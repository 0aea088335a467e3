"""Real threads against one database (a SQLite file, or PostgreSQL with DATABASE_URL):
concurrent hides of one comment leave one hiding and one audit entry; concurrent final
call-backs of one proxy rating leave one; concurrent reports by one member leave one."""

from __future__ import annotations

from ..factories import bearer, rate_delivery
from ..ratings.conftest import run_threads, table_count


def _post_all(app, n, path, body, headers):
    def work(_i):
        resp = app.test_client().post(path, json=body, headers=headers)
        return resp.status_code

    results = run_threads(n, work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    return sorted(results)


def test_concurrent_hides_hide_once(app, scene):
    w = scene.world
    rating = rate_delivery(w.resident_a, scene.delivery, 1, "骂人").rating
    got = _post_all(
        app, 4, f"/api/v1/ratings/{rating.id}/hide", {"reason": "辱骂"}, bearer(w.secretary_a)
    )
    assert got == [200, 409, 409, 409]
    assert table_count("audit_log", "action = 'comment.hide'") == 1


def test_concurrent_final_callbacks_record_once(app, scene):
    w = scene.world
    rating = rate_delivery(
        w.grid_a1, scene.delivery, 4, "代评", on_behalf_of=w.resident_a.id
    ).rating
    got = _post_all(
        app,
        4,
        f"/api/v1/ratings/{rating.id}/callbacks",
        {"outcome": "disputed", "note": "不认可"},
        bearer(w.secretary_a),
    )
    assert got == [201, 409, 409, 409]
    assert table_count("rating_callbacks") == 1
    assert table_count("notifications", "kind = 'callback.disputed'") == 1


def test_concurrent_reports_by_one_member_report_once(app, scene):
    w = scene.world
    rating = rate_delivery(w.resident_a, scene.delivery, 1, "骂人").rating
    got = _post_all(
        app, 4, f"/api/v1/ratings/{rating.id}/reports", {"reason": "不实"}, bearer(w.member_a)
    )
    assert got == [201, 409, 409, 409]
    assert table_count("comment_reports") == 1
