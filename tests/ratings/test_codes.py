"""Password-free rating with the one-time code or QR token over the API: good, reused,
wrong, expired, settled; one generic message; failures throttled per IP (429)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.extensions import db
from volunteer_market.models import Rating, utcnow
from volunteer_market.services.ratings import INVALID_CODE_MESSAGE

from ..factories import points_of, rate_delivery
from .conftest import problem, table_count, verified

PATH = "/api/v1/ratings/by-code"


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_good_code_rates_once(client, scene, unchanged):
    w, d = scene.world, scene.delivery
    code = scene.codes[w.resident_a.id].code
    resp = client.post(PATH, json={"code": code, "score": 5, "comment": "谢谢小陈"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json() == {
        "status": "rated",
        "score": 5,
        "comment": "谢谢小陈",
        "delivery_status": "awaiting_ratings",
    }
    rating = db.session.query(Rating).one()
    assert (rating.beneficiary_id, rating.entered_by_id, rating.via_code, rating.is_proxy) == (
        w.resident_a.id,
        w.resident_a.id,
        True,
        False,
    )
    assert rating.delivery_id == d.id
    with unchanged():
        again = client.post(PATH, json={"code": code, "score": 1})
    assert again.status_code == 422
    assert problem(again)["detail"] == INVALID_CODE_MESSAGE
    # the resident may still change it after logging in
    from .conftest import Api

    api = Api(client, w)
    assert api.patch(w.resident_a, f"/api/v1/ratings/{rating.id}", {"score": 4}).status_code == 200


def test_token_from_the_qr_code(client, scene):
    w = scene.world
    token = scene.codes[w.resident_a2.id].token
    resp = client.post(PATH, json={"token": token, "score": 4})
    assert resp.status_code == 201
    again = client.post(PATH, json={"token": token, "score": 4})
    assert again.status_code == 422 and problem(again)["detail"] == INVALID_CODE_MESSAGE


def test_the_last_code_settles(client, scene):
    w = scene.world
    client.post(PATH, json={"code": scene.codes[w.resident_a.id].code, "score": 5})
    resp = client.post(PATH, json={"token": scene.codes[w.resident_a2.id].token, "score": 4})
    assert resp.get_json()["delivery_status"] == "settled"
    assert points_of(w.member_a2)["earned_total"] == 24
    assert verified()


def test_wrong_expired_used_and_settled_codes_get_one_generic_422(client, scene, unchanged):
    w = scene.world
    good = scene.codes[w.resident_a.id].code
    closed = scene.record_closed()
    expired = scene.codes[w.resident_a.id].code  # the closed delivery's code
    assert closed.id != scene.delivery.id
    # rated by login: the code is used up
    rate_delivery(w.resident_a2, scene.delivery, 3)
    used = scene.codes[w.resident_a2.id].code
    bodies = [
        {"code": _wrong(good), "score": 5},
        {"code": expired, "score": 5},
        {"code": used, "score": 5},
        {"token": "x" * 43, "score": 5},
    ]
    details = set()
    with unchanged():
        for body in bodies:
            resp = client.post(PATH, json=body)
            assert resp.status_code == 422, (body, resp.get_json())
            details.add(problem(resp)["detail"])
    assert details == {INVALID_CODE_MESSAGE}


def test_code_of_a_settled_delivery(client, scene, unchanged):
    w = scene.world
    from .conftest import more_residents

    (third,) = more_residents(w, 1)
    recorded_at = utcnow() - timedelta(days=8)
    d = scene.record(now=recorded_at, beneficiaries=[w.resident_a, third])
    rate_delivery(w.resident_a, d, 5, now=recorded_at + timedelta(hours=1))
    from ..factories import settle_delivery

    settle_delivery(w.secretary_a, d)
    with unchanged():
        resp = client.post(PATH, json={"token": scene.codes[third.id].token, "score": 5})
    assert resp.status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "12345", "score": 5}, "code"),
        ({"code": "12a456", "score": 5}, "code"),
        ({"code": 123456, "score": 5}, "code"),
        ({"score": 5}, "code"),
        ({"code": "123456", "token": "y" * 40, "score": 5}, "code"),
        ({"token": "short", "score": 5}, "token"),
        ({"code": "123456", "score": 0}, "score"),
        ({"code": "123456", "score": "5"}, "score"),
        ({"code": "123456"}, "score"),
        ({"code": "123456", "score": 5, "user_id": 1}, "user_id"),
        ({"code": "123456", "score": 5, "comment": "长" * 501}, "comment"),
    ],
)
def test_bad_bodies_are_422_and_not_counted(client, scene, unchanged, app, body, field):
    app.config["RATING_CODE_FAILURES_PER_HOUR"] = 1
    with unchanged():
        resp = client.post(PATH, json=body)
        assert resp.status_code == 422, resp.get_json()
        assert field in problem(resp)["errors"]
        # schema errors are not guesses: a good code still works afterwards
        resp = client.post(PATH, json=body)
        assert resp.status_code == 422
    good = client.post(PATH, json={"code": scene.codes[scene.world.resident_a.id].code, "score": 5})
    assert good.status_code == 201


def test_a_bad_score_with_a_good_code_does_not_use_it(client, scene, unchanged):
    code = scene.codes[scene.world.resident_a.id].code
    with unchanged():
        assert client.post(PATH, json={"code": code, "score": 9}).status_code == 422
    assert client.post(PATH, json={"code": code, "score": 2}).status_code == 201


def test_malformed_json_is_400(client, scene, unchanged):
    with unchanged():
        resp = client.post(PATH, data=b"{oops", content_type="application/json")
    assert resp.status_code == 400


def test_failures_are_throttled_per_ip(client, scene, app, unchanged):
    app.config["RATING_CODE_FAILURES_PER_HOUR"] = 3
    good = scene.codes[scene.world.resident_a.id].code
    with unchanged():
        for _ in range(3):
            assert client.post(PATH, json={"code": _wrong(good), "score": 5}).status_code == 422
        blocked = client.post(PATH, json={"code": _wrong(good), "score": 5})
        assert blocked.status_code == 429
        assert blocked.headers.get("Retry-After")
        problem(blocked)
        # while blocked, even the right code is refused (no oracle for guesses)
        assert client.post(PATH, json={"code": good, "score": 5}).status_code == 429
    # another address is not blocked
    other = client.post(
        PATH, json={"code": good, "score": 5}, environ_base={"REMOTE_ADDR": "10.9.8.7"}
    )
    assert other.status_code == 201
    assert table_count("ratings") == 1


def test_successes_do_not_count(client, scene, app):
    app.config["RATING_CODE_FAILURES_PER_HOUR"] = 1
    w = scene.world
    assert (
        client.post(PATH, json={"code": scene.codes[w.resident_a.id].code, "score": 5}).status_code
        == 201
    )
    assert (
        client.post(
            PATH, json={"token": scene.codes[w.resident_a2.id].token, "score": 5}
        ).status_code
        == 201
    )
    assert client.post(PATH, json={"code": "000000", "score": 5}).status_code in (422, 201)
    assert client.post(PATH, json={"code": "000000", "score": 5}).status_code == 429
