"""Rating over the API: who may rate (and by proxy), when, once; changes; replies;
bad input; what each role sees. Every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.extensions import db
from volunteer_market.models import AuditEntry, Notification, Rating, Role, utcnow

from ..factories import make_user, points_of, rate_delivery, settle_delivery
from .conftest import more_residents, problem, table_count, verified


def _rate_path(d) -> str:
    return f"/api/v1/deliveries/{d.id}/ratings"


# --- who may rate -------------------------------------------------------------------


def test_beneficiary_rates_once_and_sees_own_rating(api, scene):
    w, d = scene.world, scene.delivery
    resp = api.post(w.resident_a, _rate_path(d), {"score": 4, "comment": "  师傅很细心  "})
    assert resp.status_code == 201
    body = resp.get_json()
    assert (body["score"], body["comment"], body["mine"], body["is_proxy"]) == (
        4,
        "师傅很细心",
        True,
        False,
    )
    assert body["via_code"] is False and "beneficiary_id" not in body
    rating = db.session.get(Rating, body["id"])
    assert (rating.beneficiary_id, rating.entered_by_id) == (w.resident_a.id, w.resident_a.id)
    # rating by login uses up the code too
    assert table_count("delivery_beneficiaries", "code_used_at IS NOT NULL") == 1
    assert points_of(w.member_a)["available"] == 0  # not settled: one of two rated


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("member_a", 403),  # participant (owner)
        ("member_a2", 403),  # participant (team)
        ("member_a3", 404),  # member of the community, not on the team
        ("resident_b", 404),  # resident of another community
        ("grid_a1", 403),  # staff without on_behalf_of: not a beneficiary
        ("secretary_a", 403),
        ("officer_street", 403),
        ("secretary_b", 404),
        ("grid_b1", 404),
        ("admin", 403),
    ],
)
def test_only_beneficiaries_rate(api, scene, unchanged, who, status):
    with unchanged():
        resp = api.post(who, _rate_path(scene.delivery), {"score": 5})
    assert resp.status_code == status, resp.get_json()
    problem(resp)


def test_non_beneficiary_resident_of_the_community(api, scene, unchanged):
    other = make_user("resident_a9", (Role.RESIDENT, scene.world.areas["grid_a1"]))
    with unchanged():
        resp = api.post(other, _rate_path(scene.delivery), {"score": 5})
    assert resp.status_code == 404


@pytest.mark.parametrize("who", ["grid_a1", "secretary_a"])
def test_proxy_rating_is_flagged_audited_and_notified(api, scene, who):
    w, d = scene.world, scene.delivery
    resp = api.post(
        who, _rate_path(d), {"score": 5, "comment": "老人口述", "on_behalf_of": w.resident_a.id}
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["is_proxy"] is True and body["mine"] is True
    rating = db.session.get(Rating, body["id"])
    staff = w.users[who]
    assert (rating.beneficiary_id, rating.entered_by_id, rating.is_proxy) == (
        w.resident_a.id,
        staff.id,
        True,
    )
    entry = db.session.query(AuditEntry).filter_by(action="rating.create").one()
    assert entry.actor_id == staff.id and entry.detail["is_proxy"] is True
    assert entry.detail["beneficiary_id"] == w.resident_a.id
    note = (
        db.session.query(Notification)
        .filter_by(user_id=w.resident_a.id, kind="rating.proxy_entered")
        .one()
    )
    assert note.params["score"] == 5
    # the resident can no longer rate for themself, nor by code
    again = api.post(w.resident_a, _rate_path(d), {"score": 1})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("who", "on_behalf_of", "status"),
    [
        ("grid_b1", "resident_a", 404),  # grid worker of another community
        ("secretary_b", "resident_a", 404),  # secretary of another community
        ("secretary_c", "resident_a", 404),
        ("officer_street", "resident_a", 403),  # officers read, they do not rate
        ("resident_a2", "resident_a", 403),  # a beneficiary rates only for themself
        ("member_a", "resident_a", 403),  # participant
        ("member_a3", "resident_a", 404),
        ("grid_a1", "resident_b", 422),  # not a beneficiary of this delivery
        ("grid_a1", "member_a", 422),
        ("secretary_a", "admin", 422),
    ],
)
def test_proxy_refusals(api, scene, unchanged, who, on_behalf_of, status):
    w = scene.world
    with unchanged():
        resp = api.post(
            who,
            _rate_path(scene.delivery),
            {"score": 3, "on_behalf_of": w.users[on_behalf_of].id},
        )
    assert resp.status_code == status, resp.get_json()
    if status == 422:
        assert "on_behalf_of" in problem(resp)["errors"]


def test_on_behalf_of_unknown_user(api, scene, unchanged):
    with unchanged():
        resp = api.post("grid_a1", _rate_path(scene.delivery), {"score": 3, "on_behalf_of": 99999})
    assert resp.status_code == 422


def test_unknown_delivery_is_404(api, scene, unchanged):
    with unchanged():
        resp = api.post("resident_a", "/api/v1/deliveries/99999/ratings", {"score": 3})
    assert resp.status_code == 404


def test_no_token_is_401(client, scene, unchanged):
    with unchanged():
        resp = client.post(_rate_path(scene.delivery), json={"score": 5})
    assert resp.status_code == 401


# --- when and how often ---------------------------------------------------------------


def test_second_rating_is_409_and_points_at_the_change(api, scene, unchanged):
    w, d = scene.world, scene.delivery
    first = api.post(w.resident_a, _rate_path(d), {"score": 4})
    with unchanged():
        resp = api.post(w.resident_a, _rate_path(d), {"score": 5})
    assert resp.status_code == 409
    assert str(first.get_json()["id"]) in problem(resp)["detail"]
    assert "change" in problem(resp)["detail"]


def test_outside_the_window_is_409(api, scene, unchanged):
    d = scene.record_closed()
    with unchanged():
        resp = api.post("resident_a", _rate_path(d), {"score": 5})
    assert resp.status_code == 409
    assert "window" in problem(resp)["detail"]


def test_window_comes_from_the_community_policy_at_recording(api, scene):
    from volunteer_market.database import atomic
    from volunteer_market.services import points_policy

    w = scene.world
    with atomic():
        points_policy.new_policy_version(None, w.community_a, rating_window_days=2)
    recorded_at = utcnow() - timedelta(days=3)
    d = scene.record(now=recorded_at)
    assert d.rating_deadline == d.ended_at + timedelta(days=2)
    resp = api.post("resident_a", _rate_path(d), {"score": 5})
    assert resp.status_code == 409  # closed after two days, not seven
    # a later policy version does not move the deadline of a recorded delivery
    fresh = scene.record(hours_ago=30)
    with atomic():
        points_policy.new_policy_version(None, w.community_a, rating_window_days=30)
    db.session.rollback()
    assert fresh.rating_deadline == fresh.ended_at + timedelta(days=2)


def test_rating_a_settled_delivery_is_409(api, scene, unchanged):
    w = scene.world
    (extra,) = more_residents(w, 1)
    recorded_at = utcnow() - timedelta(days=8)
    d = scene.record(now=recorded_at, beneficiaries=[w.resident_a, extra])
    rate_delivery(w.resident_a, d, 5, now=recorded_at + timedelta(hours=1))
    settle_delivery(w.secretary_a, d)
    with unchanged():
        resp = api.post(extra, _rate_path(d), {"score": 5})
    assert resp.status_code == 409


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"score": 0}, "score"),
        ({"score": 6}, "score"),
        ({"score": -1}, "score"),
        ({"score": "x"}, "score"),
        ({"score": "5"}, "score"),
        ({"score": 4.5}, "score"),
        ({"score": True}, "score"),
        ({"score": None}, "score"),
        ({}, "score"),
        ({"comment": "好"}, "score"),
        ({"score": 5, "comment": "长" * 501}, "comment"),
        ({"score": 5, "comment": 12}, "comment"),
        ({"score": 5, "beneficiary_id": 3}, "beneficiary_id"),
        ({"score": 5, "is_proxy": True}, "is_proxy"),
        ({"score": 5, "on_behalf_of": "x"}, "on_behalf_of"),
        ({"score": 5, "on_behalf_of": 0}, "on_behalf_of"),
    ],
)
def test_bad_bodies_are_422(api, scene, unchanged, body, field):
    with unchanged():
        resp = api.post("resident_a", _rate_path(scene.delivery), body)
    assert resp.status_code == 422, resp.get_json()
    assert field in problem(resp)["errors"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"score"'])
def test_malformed_json_is_400_or_422(api, scene, unchanged, raw):
    w = scene.world
    with unchanged():
        resp = api.client.post(
            _rate_path(scene.delivery),
            data=raw,
            headers={**api.headers(w.resident_a), "Content-Type": "application/json"},
        )
    assert resp.status_code in (400, 422)
    if raw == b"{not json":
        assert resp.status_code == 400
    problem(resp)


# --- changing a rating -----------------------------------------------------------------


def test_change_inside_the_window(api, scene):
    w, d = scene.world, scene.delivery
    rid = api.post(w.resident_a, _rate_path(d), {"score": 2, "comment": "迟到"}).get_json()["id"]
    resp = api.patch(w.resident_a, f"/api/v1/ratings/{rid}", {"score": 4})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["score"], resp.get_json()["comment"]) == (4, "迟到")
    resp = api.patch(w.resident_a, f"/api/v1/ratings/{rid}", {"comment": ""})
    assert resp.get_json()["comment"] is None
    entry = db.session.query(AuditEntry).filter_by(action="rating.change").first()
    assert entry.detail["old_score"] == 2 and entry.detail["score"] == 4
    # proxy staff may change it for the resident (then flagged as proxy)
    resp = api.patch(w.grid_a1, f"/api/v1/ratings/{rid}", {"score": 5})
    assert resp.status_code == 200 and resp.get_json()["is_proxy"] is True


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("resident_a2", 403),
        ("member_a", 403),
        ("member_a2", 403),
        ("member_a3", 404),
        ("secretary_b", 404),
        ("officer_street", 403),
    ],
)
def test_only_the_beneficiary_or_proxy_staff_change(api, scene, unchanged, who, status):
    rid = api.post("resident_a", _rate_path(scene.delivery), {"score": 3}).get_json()["id"]
    with unchanged():
        resp = api.patch(who, f"/api/v1/ratings/{rid}", {"score": 5})
    assert resp.status_code == status


@pytest.mark.parametrize(
    "body", [{}, {"score": 0}, {"score": "4"}, {"score": 5, "extra": 1}, {"comment": "长" * 501}]
)
def test_bad_changes_are_422(api, scene, unchanged, body):
    rid = api.post("resident_a", _rate_path(scene.delivery), {"score": 3}).get_json()["id"]
    with unchanged():
        resp = api.patch("resident_a", f"/api/v1/ratings/{rid}", body)
    assert resp.status_code == 422


def test_change_after_settlement_is_409(api, scene, unchanged):
    w, d = scene.world, scene.delivery
    rid = api.post(w.resident_a, _rate_path(d), {"score": 5}).get_json()["id"]
    api.post(w.resident_a2, _rate_path(d), {"score": 4})  # settles
    with unchanged():
        resp = api.patch(w.resident_a, f"/api/v1/ratings/{rid}", {"score": 1})
    assert resp.status_code == 409
    assert "settled" in problem(resp)["detail"]
    assert points_of(w.member_a)["available"] == 24


def test_change_after_the_window_is_409(api, scene, unchanged):
    w = scene.world
    recorded_at = utcnow() - timedelta(days=8)
    d = scene.record(now=recorded_at)
    rated = rate_delivery(w.resident_a, d, 5, now=recorded_at + timedelta(hours=1))
    with unchanged():
        resp = api.patch(w.resident_a, f"/api/v1/ratings/{rated.rating.id}", {"score": 1})
    assert resp.status_code == 409


def test_change_unknown_rating_is_404(api, scene):
    assert api.patch("resident_a", "/api/v1/ratings/4242", {"score": 1}).status_code == 404


# --- replies ----------------------------------------------------------------------------


def test_participant_replies_once(api, scene, unchanged):
    w, d = scene.world, scene.delivery
    rid = api.post(w.resident_a, _rate_path(d), {"score": 3, "comment": "来晚了"}).get_json()["id"]
    resp = api.post(w.member_a, f"/api/v1/ratings/{rid}/reply", {"text": "抱歉，下次准时。"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["member_id"] == w.member_a.id
    note = (
        db.session.query(Notification)
        .filter_by(user_id=w.resident_a.id, kind="rating.replied")
        .one()
    )
    assert note.params["member"] == w.member_a.display_name
    with unchanged():
        again = api.post(w.member_a, f"/api/v1/ratings/{rid}/reply", {"text": "再说一次"})
    assert again.status_code == 409
    # the other participant has their own reply
    assert (
        api.post(w.member_a2, f"/api/v1/ratings/{rid}/reply", {"text": "谢谢"}).status_code == 201
    )
    view = api.get(w.member_a, _rate_path(d)).get_json()
    assert [r["text"] for r in view["items"][0]["replies"]] == ["抱歉，下次准时。", "谢谢"]
    assert view["items"][0]["can_reply"] is False


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("resident_a", {"text": "我来回复"}, 403),
        ("secretary_a", {"text": "书记回复"}, 403),
        ("member_a3", {"text": "路过"}, 404),
        ("member_b", {"text": "路过"}, 404),
        ("member_a", {"text": "  "}, 422),
        ("member_a", {}, 422),
        ("member_a", {"text": "x" * 501}, 422),
        ("member_a", {"text": "好", "rating_id": 1}, 422),
    ],
)
def test_reply_refusals(api, scene, unchanged, who, body, status):
    rid = api.post("resident_a", _rate_path(scene.delivery), {"score": 3}).get_json()["id"]
    with unchanged():
        resp = api.post(who, f"/api/v1/ratings/{rid}/reply", body)
    assert resp.status_code == status, resp.get_json()


# --- what each role sees ----------------------------------------------------------------

IDENTITY_KEYS = {"beneficiary_id", "beneficiary_name", "entered_by_id", "entered_by_name"}


def _two_ratings(api, scene):
    w, d = scene.world, scene.delivery
    api.post(w.resident_a, _rate_path(d), {"score": 3, "comment": "一般"})
    api.post(w.grid_a1, _rate_path(d), {"score": 5, "on_behalf_of": w.resident_a2.id})


@pytest.mark.parametrize("who", ["member_a", "member_a2"])
def test_members_never_see_who_gave_which(api, scene, who):
    _two_ratings(api, scene)
    resp = api.get(who, _rate_path(scene.delivery))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["identities_visible"] is False and "pending" not in body
    assert [i["score"] for i in body["items"]] == [5, 3]  # by score, not by time
    for item in body["items"]:
        assert not IDENTITY_KEYS & set(item)
        assert not {"created_at", "updated_at", "is_proxy", "via_code"} & set(item)
        assert item["mine"] is False
    text = resp.get_data(as_text=True)
    for resident in ("resident_a", "resident_a2"):
        assert scene.world.users[resident].display_name not in text


@pytest.mark.parametrize("who", ["secretary_a", "officer_street", "officer_district"])
def test_secretary_and_officers_see_who(api, scene, who):
    _two_ratings(api, scene)
    body = api.get(who, _rate_path(scene.delivery)).get_json()
    assert body["identities_visible"] is True
    by_beneficiary = {i["beneficiary_id"]: i for i in body["items"]}
    w = scene.world
    assert by_beneficiary[w.resident_a.id]["score"] == 3
    assert by_beneficiary[w.resident_a2.id]["is_proxy"] is True
    assert by_beneficiary[w.resident_a2.id]["entered_by_id"] == w.grid_a1.id
    assert body["average_score"] == 4.0 and body["ratings_count"] == 2


def test_residents_see_their_own_marked_and_others_masked(api, scene):
    _two_ratings(api, scene)
    body = api.get("resident_a", _rate_path(scene.delivery)).get_json()
    mine = [i for i in body["items"] if i["mine"]]
    others = [i for i in body["items"] if not i["mine"]]
    assert len(mine) == 1 and mine[0]["score"] == 3 and "created_at" in mine[0]
    assert len(others) == 1 and not IDENTITY_KEYS & set(others[0])
    assert "created_at" not in others[0]


def test_grid_worker_sees_pending_but_not_who(api, scene):
    w, d = scene.world, scene.delivery
    api.post(w.resident_a, _rate_path(d), {"score": 3})
    body = api.get("grid_a1", _rate_path(d)).get_json()
    assert body["identities_visible"] is False and body["can_proxy"] is True
    assert [p["user_id"] for p in body["pending"]] == [w.resident_a2.id]
    assert not IDENTITY_KEYS & set(body["items"][0])


@pytest.mark.parametrize("who", ["member_a3", "secretary_b", "resident_b", "officer_other"])
def test_outsiders_get_404(api, scene, who):
    assert api.get(who, _rate_path(scene.delivery)).status_code == 404


def test_flags_for_the_viewer(api, scene):
    d = scene.delivery
    assert api.get("resident_a", _rate_path(d)).get_json()["can_rate"] is True
    assert api.get("member_a", _rate_path(d)).get_json()["can_rate"] is False
    body = api.get("secretary_a", _rate_path(d)).get_json()
    assert body["can_settle"] is True and body["window_open"] is True and body["can_rate"] is False
    assert verified()
