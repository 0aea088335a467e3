"""Pages: the password-free rating page (code and QR), a delivery's ratings with the
rate/proxy/change/reply/settle forms, the settlement queue, my ratings. Allowed,
forbidden and bad input per page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.extensions import db
from volunteer_market.models import Rating, RatingReply, utcnow

from ..conftest import csrf_token, login
from ..factories import points_of, rate_delivery
from .conftest import table_count, verified

GENERIC = "这个评价码无效"


def _post(client, path, data, token_from="/rate"):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, token_from)})


# --- /rate: six digits -> stars -> comment -> done ---------------------------------------


def test_code_flow_end_to_end(client, scene):
    w = scene.world
    code = scene.codes[w.resident_a.id].code
    page = client.get("/rate")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="csrf_token"' in html and 'inputmode="numeric"' in html
    assert "<script" not in html and "style=" not in html

    stars = _post(client, "/rate", {"code": code, "step": "code"})
    assert stars.status_code == 200
    html = stars.get_data(as_text=True)
    assert scene.project.title in html and html.count('class="star-button"') == 5
    assert w.resident_a.display_name not in html  # nothing personal

    comment = _post(client, "/rate", {"code": code, "step": "score", "score": "4"})
    assert comment.status_code == 200 and 'name="comment"' in comment.get_data(as_text=True)
    assert table_count("ratings") == 0  # nothing recorded before the final submit

    done = _post(client, "/rate", {"code": code, "step": "submit", "score": "4", "comment": "好"})
    assert done.status_code == 200, done.get_data(as_text=True)[:500]
    assert "谢谢您的评价" in done.get_data(as_text=True)
    rating = db.session.query(Rating).one()
    assert (rating.score, rating.comment, rating.via_code) == (4, "好", True)

    again = _post(client, "/rate", {"code": code, "step": "code"})
    assert again.status_code == 422 and GENERIC in again.get_data(as_text=True)


def test_back_to_the_stars(client, scene):
    code = scene.codes[scene.world.resident_a.id].code
    back = _post(client, "/rate", {"code": code, "step": "code", "score": "2"})
    assert back.status_code == 200 and 'class="star-button"' in back.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        ({"code": "12", "step": "code"}, 422, "6 位数字"),
        ({"code": "abcdef", "step": "code"}, 422, "6 位数字"),
        ({"step": "code"}, 422, "6 位数字"),
    ],
)
def test_malformed_codes(client, scene, unchanged, data, status, text):
    with unchanged():
        resp = _post(client, "/rate", data)
    assert resp.status_code == status and text in resp.get_data(as_text=True)


def test_wrong_and_expired_codes_show_one_generic_message(client, scene, unchanged):
    w = scene.world
    good = scene.codes[w.resident_a.id].code
    scene.record_closed()
    expired = scene.codes[w.resident_a.id].code
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    with unchanged():
        for code in (wrong, expired):
            resp = _post(client, "/rate", {"code": code, "step": "code"})
            assert resp.status_code == 422 and GENERIC in resp.get_data(as_text=True)


@pytest.mark.parametrize("score", ["0", "6", "x", "", "4.5"])
def test_bad_scores_on_the_page(client, scene, unchanged, score):
    code = scene.codes[scene.world.resident_a.id].code
    with unchanged():
        for step in ("score", "submit"):
            resp = _post(client, "/rate", {"code": code, "step": step, "score": score})
            assert resp.status_code == 422


def test_too_long_comment_on_the_page(client, scene, unchanged):
    code = scene.codes[scene.world.resident_a.id].code
    with unchanged():
        resp = _post(
            client, "/rate", {"code": code, "step": "submit", "score": "5", "comment": "长" * 501}
        )
    assert resp.status_code == 422


def test_missing_csrf_is_400(client, scene, unchanged):
    code = scene.codes[scene.world.resident_a.id].code
    with unchanged():
        resp = client.post("/rate", data={"code": code, "step": "submit", "score": "5"})
    assert resp.status_code == 400


def test_page_and_api_share_the_throttle(client, scene, app, unchanged):
    app.config["RATING_CODE_FAILURES_PER_HOUR"] = 2
    good = scene.codes[scene.world.resident_a.id].code
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    with unchanged():
        assert _post(client, "/rate", {"code": wrong, "step": "code"}).status_code == 422
        assert (
            client.post("/api/v1/ratings/by-code", json={"code": wrong, "score": 5}).status_code
            == 422
        )
        blocked = _post(client, "/rate", {"code": good, "step": "code"})
        assert blocked.status_code == 429 and blocked.headers.get("Retry-After")
        assert (
            client.get(f"/rate/{scene.codes[scene.world.resident_a.id].token}").status_code == 429
        )


# --- /rate/<token>: the QR link ---------------------------------------------------------


def test_qr_flow(client, scene):
    w = scene.world
    token = scene.codes[w.resident_a2.id].token
    page = client.get(f"/rate/{token}")
    assert page.status_code == 200 and 'class="star-button"' in page.get_data(as_text=True)
    path = f"/rate/{token}"
    comment = _post(client, path, {"step": "score", "score": "5"}, token_from=path)
    assert comment.status_code == 200
    done = _post(client, path, {"step": "submit", "score": "5", "comment": ""}, token_from=path)
    assert done.status_code == 200 and "谢谢您的评价" in done.get_data(as_text=True)
    assert db.session.query(Rating).one().comment is None
    used = client.get(path)
    assert used.status_code == 404 and GENERIC in used.get_data(as_text=True)


@pytest.mark.parametrize("token", ["x" * 43, "short", "%2e%2e"])
def test_bad_tokens_are_404(client, scene, unchanged, token):
    with unchanged():
        assert client.get(f"/rate/{token}").status_code == 404
        resp = _post(client, f"/rate/{token}", {"step": "submit", "score": "5"})
        assert resp.status_code == 404


# --- a delivery's ratings page (signed in) -------------------------------------------------


def _page(client, d):
    return client.get(f"/deliveries/{d.id}/ratings")


def test_resident_rates_from_the_delivery_page(client, scene):
    d = scene.delivery
    login(client, "resident_a")
    page = _page(client, d)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="score"' in html and "提交评价" in html
    path = f"/deliveries/{d.id}/ratings"
    resp = _post(client, path, {"score": "5", "comment": "非常好"}, token_from=path)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert db.session.query(Rating).one().score == 5
    html = _page(client, d).get_data(as_text=True)
    assert "非常好" in html and "修改评价" in html and "提交评价" not in html


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"score": "0"}, 422),
        ({"score": "x"}, 422),
        ({}, 422),
        ({"score": "5", "comment": "长" * 501}, 422),
    ],
)
def test_bad_input_on_the_delivery_page(client, scene, unchanged, data, status):
    d = scene.delivery
    login(client, "resident_a")
    path = f"/deliveries/{d.id}/ratings"
    with unchanged():
        resp = _post(client, path, data, token_from=path)
    assert resp.status_code == status


@pytest.mark.parametrize(
    ("who", "status"), [("member_a", 403), ("grid_a1", 403), ("member_a3", 404)]
)
def test_forbidden_ratings_on_the_page(client, scene, unchanged, who, status):
    d = scene.delivery
    login(client, who)
    with unchanged():
        resp = _post(client, f"/deliveries/{d.id}/ratings", {"score": "5"}, token_from="/")
    assert resp.status_code == status


def test_outsiders_get_404_pages(client, scene):
    login(client, "secretary_b")
    assert _page(client, scene.delivery).status_code == 404
    assert client.get("/deliveries/99999/ratings").status_code == 404


def test_anonymous_is_sent_to_login(client, scene):
    resp = _page(client, scene.delivery)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_grid_worker_enters_a_proxy_rating(client, scene):
    w, d = scene.world, scene.delivery
    login(client, "grid_a1")
    html = _page(client, d).get_data(as_text=True)
    assert "代居民评价" in html and w.resident_a.display_name in html
    path = f"/deliveries/{d.id}/ratings"
    resp = _post(
        client, path, {"score": "4", "on_behalf_of": str(w.resident_a.id)}, token_from=path
    )
    assert resp.status_code == 302
    rating = db.session.query(Rating).one()
    assert rating.is_proxy and rating.entered_by_id == w.grid_a1.id
    bad = _post(client, path, {"score": "4", "on_behalf_of": str(w.resident_b.id)}, token_from=path)
    assert bad.status_code == 422


def test_member_sees_ratings_without_names_and_replies(client, scene):
    w, d = scene.world, scene.delivery
    rid = rate_delivery(w.resident_a, d, 3, "有点晚").rating.id
    login(client, "member_a")
    html = _page(client, d).get_data(as_text=True)
    assert "有点晚" in html and w.resident_a.display_name not in html
    assert "评价人" not in html and "提交评价" not in html
    path = f"/deliveries/{d.id}/ratings"
    resp = _post(client, f"/ratings/{rid}/reply", {"text": "抱歉"}, token_from=path)
    assert resp.status_code == 302
    assert db.session.query(RatingReply).one().text == "抱歉"
    again = _post(client, f"/ratings/{rid}/reply", {"text": "再次"}, token_from=path)
    assert again.status_code == 409
    empty = _post(client, f"/ratings/{rid}/reply", {"text": " "}, token_from=path)
    assert empty.status_code == 422


def test_secretary_sees_names(client, scene):
    w, d = scene.world, scene.delivery
    rate_delivery(w.resident_a, d, 3, "有点晚")
    login(client, "secretary_a")
    html = _page(client, d).get_data(as_text=True)
    assert "评价人" in html and w.resident_a.display_name in html


def test_change_on_the_page(client, scene):
    w, d = scene.world, scene.delivery
    rid = rate_delivery(w.resident_a, d, 2).rating.id
    login(client, "resident_a")
    path = f"/deliveries/{d.id}/ratings"
    resp = _post(
        client, f"/ratings/{rid}/edit", {"score": "4", "comment": "后来很好"}, token_from=path
    )
    assert resp.status_code == 302
    db.session.rollback()
    assert db.session.get(Rating, rid).score == 4
    bad = _post(client, f"/ratings/{rid}/edit", {"score": "9"}, token_from=path)
    assert bad.status_code == 422
    other_client = client.application.test_client()
    login(other_client, "resident_a2")
    other = _post(other_client, f"/ratings/{rid}/edit", {"score": "1"}, token_from=path)
    assert other.status_code == 403


# --- settling from the page and the queue ----------------------------------------------------


def test_settlement_queue_page_and_one_tap_settle(client, scene):
    w = scene.world
    closed = scene.record_closed()
    login(client, "secretary_a")
    page = client.get("/settlement")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"#{closed.id}" in html and 'name="confirm_unrated"' in html
    refused = _post(
        client, f"/deliveries/{closed.id}/settle", {"next": "queue"}, token_from="/settlement"
    )
    assert (
        refused.status_code == 409
        and "Nobody rated" in refused.get_data(as_text=True)
        or (refused.status_code == 409)
    )
    assert table_count("settlements") == 0
    resp = _post(
        client,
        f"/deliveries/{closed.id}/settle",
        {"next": "queue", "confirm_unrated": "1"},
        token_from="/settlement",
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/settlement")
    assert points_of(w.member_a)["available"] == 20
    twice = _post(
        client,
        f"/deliveries/{closed.id}/settle",
        {"confirm_unrated": "1"},
        token_from="/settlement",
    )
    assert twice.status_code == 409
    html = _page(client, closed).get_data(as_text=True)
    assert "结算结果" in html and "20" in html
    assert verified()


def test_settle_before_the_window_on_the_page_is_409(client, scene, unchanged):
    login(client, "secretary_a")
    with unchanged():
        resp = _post(
            client, f"/deliveries/{scene.delivery.id}/settle", {}, token_from="/settlement"
        )
    assert resp.status_code == 409


@pytest.mark.parametrize(
    ("who", "status"), [("member_a", 403), ("grid_a1", 403), ("secretary_b", 404)]
)
def test_settle_forbidden_on_the_page(client, scene, unchanged, who, status):
    closed = scene.record_closed()
    login(client, who)
    with unchanged():
        resp = _post(
            client, f"/deliveries/{closed.id}/settle", {"confirm_unrated": "1"}, token_from="/"
        )
    assert resp.status_code == status


@pytest.mark.parametrize("who", ["member_a", "resident_a", "grid_a1", "officer_street"])
def test_queue_is_for_secretaries(client, scene, who):
    login(client, who)
    assert client.get("/settlement").status_code == 403


# --- my ratings ----------------------------------------------------------------------------------


def test_inbox_for_members_and_residents(client, scene):
    w, d = scene.world, scene.delivery
    rid = rate_delivery(w.resident_a, d, 5, "谢谢").rating.id
    login(client, "member_a2")
    page = client.get("/ratings")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "谢谢" in html and w.resident_a.display_name not in html
    resp = _post(
        client, f"/ratings/{rid}/reply", {"text": "应该的", "next": "inbox"}, token_from="/ratings"
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/ratings")
    again = _post(
        client, f"/ratings/{rid}/reply", {"text": "x", "next": "inbox"}, token_from="/ratings"
    )
    assert again.status_code == 302  # flashed error, nothing stored
    assert table_count("rating_replies") == 1

    client2 = client.application.test_client()
    login(client2, "resident_a2")
    html = client2.get("/ratings").get_data(as_text=True)
    assert "等您评价" in html and f"/deliveries/{d.id}/ratings" in html


def test_inbox_is_for_members_and_residents(client, scene):
    login(client, "officer_street")
    assert client.get("/ratings").status_code == 403


def test_nav_links(client, scene):
    login(client, "secretary_a")
    assert 'href="/settlement"' in client.get("/").get_data(as_text=True)
    client2 = client.application.test_client()
    login(client2, "resident_a")
    html = client2.get("/").get_data(as_text=True)
    assert 'href="/ratings"' in html and 'href="/settlement"' not in html


def test_rate_page_is_readable_in_english(client, scene):
    assert client.get("/rate?lang=en").status_code == 200


def test_closed_window_on_the_delivery_page(client, scene):
    recorded_at = utcnow() - timedelta(days=8)
    d = scene.record(now=recorded_at)
    login(client, "resident_a")
    html = _page(client, d).get_data(as_text=True)
    assert "提交评价" not in html and "已截止" in html


def test_notifications_read_well_and_never_name_the_rater(client, scene):
    w, d = scene.world, scene.delivery
    rate_delivery(w.resident_a, d, 5, "谢谢")
    rate_delivery(w.resident_a2, d, 4)
    login(client, "member_a")
    html = client.get("/notifications").get_data(as_text=True)
    assert "收到一条 5 星评价" in html and "您获得 24 积分" in html
    assert w.resident_a.display_name not in html.split("</header>", 1)[-1]


def test_delivery_page_links_to_ratings(client, scene):
    login(client, "member_a")
    html = client.get(f"/deliveries/{scene.delivery.id}").get_data(as_text=True)
    assert f"/deliveries/{scene.delivery.id}/ratings" in html


def test_openapi_documents_ratings(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in (
        "/api/v1/deliveries/{delivery_id}/ratings",
        "/api/v1/ratings/{rating_id}",
        "/api/v1/ratings/{rating_id}/reply",
        "/api/v1/ratings/by-code",
        "/api/v1/deliveries/{delivery_id}/settle",
        "/api/v1/deliveries/{delivery_id}/settlement",
        "/api/v1/settlement-queue",
    ):
        assert path in spec["paths"], path
