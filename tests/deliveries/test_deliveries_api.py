"""/api/v1/deliveries: recording sessions, rating codes, rules, visibility, photos."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import DeliveryBeneficiary

from ..factories import image_bytes, make_delivery, make_need, make_project, same_picture
from ..projects.conftest import hours_ago, iso, multipart, problem_fields


@pytest.fixture
def project(world):
    """An approved project of member_a with member_a2 active and member_a3 pending."""
    p = make_project(world.member_a, world.community_a, status="approved", team=[world.member_a2])
    from volunteer_market.database import atomic
    from volunteer_market.services import projects as project_service

    with atomic():
        project_service.request_join(world.member_a3, p)
    return p


def body(world, project, **over):
    start = hours_ago(3)
    data = {
        "project_id": project.id,
        "started_at": iso(start),
        "ended_at": iso(start + timedelta(hours=2)),
        "participants": [
            {"user_id": world.member_a.id, "hours": 2},
            {"user_id": world.member_a2.id, "hours": 1.5},
        ],
        "beneficiaries": [world.resident_a.id, world.resident_a2.id],
    }
    data.update(over)
    return data


def test_owner_records_a_delivery(api, world, project):
    resp = api.post("member_a", "/api/v1/deliveries", body(world, project))
    assert resp.status_code == 201, resp.get_json()
    d = resp.get_json()
    assert d["status"] == "awaiting_ratings"
    assert d["hours"] == 2
    assert [(p["user_id"], p["hours"], p["minutes"]) for p in d["participants"]] == [
        (world.member_a.id, 2, 120),
        (world.member_a2.id, 1.5, 90),
    ]
    assert sorted(b["user_id"] for b in d["beneficiaries"]) == sorted(
        [world.resident_a.id, world.resident_a2.id]
    )
    from datetime import datetime

    deadline = datetime.fromisoformat(d["rating_deadline"])
    assert deadline - datetime.fromisoformat(d["ended_at"]) == timedelta(days=7)
    # issue 15: the recorder (a participant) gets no rating code, token, link or QR
    assert "rating_codes" not in d
    raw = resp.get_data(as_text=True)
    assert "/rate/" not in raw and "data:image/svg" not in raw
    rows = db.session.scalars(sa.select(DeliveryBeneficiary)).all()
    assert [(r.rating_code_hash, r.rating_token_hash) for r in rows] == [(None, None)] * 2
    # beneficiaries are told to rate, the other participant is told it was recorded
    kinds = [n["kind"] for n in api.get("resident_a", "/api/v1/notifications").get_json()["items"]]
    assert kinds == ["delivery.please_rate"]
    kinds = [n["kind"] for n in api.get("member_a2", "/api/v1/notifications").get_json()["items"]]
    assert "delivery.recorded" in kinds


def test_code_lookup_helpers(world, project):
    from volunteer_market.services import deliveries as delivery_service

    recorded = make_delivery(project, world.member_a, beneficiaries=[world.resident_a])
    rc = recorded.rating_codes[0]
    row = delivery_service.find_beneficiary_by_code(rc.code)
    assert row is not None and row.user_id == world.resident_a.id
    assert delivery_service.find_beneficiary_by_token(rc.token).id == row.id
    later = recorded.delivery.rating_deadline + timedelta(seconds=1)
    assert delivery_service.find_beneficiary_by_code(rc.code, now=later) is None


def test_active_team_member_records(api, world, project):
    resp = api.post(
        "member_a2",
        "/api/v1/deliveries",
        body(world, project, participants=[{"user_id": world.member_a2.id, "hours": 2}]),
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["recorded_by_id"] == world.member_a2.id


@pytest.mark.parametrize(
    "who, code",
    [
        ("member_a3", 403),  # pending, not active
        ("secretary_a", 403),
        ("grid_a1", 403),
        ("resident_a", 403),
        ("member_b", 403),  # other community (project is public)
        ("admin", 403),
    ],
)
def test_who_may_record(api, world, project, unchanged, who, code):
    with unchanged():
        resp = api.post(who, "/api/v1/deliveries", body(world, project))
    assert resp.status_code == code


@pytest.mark.parametrize(
    "state, code", [("completed", 409), ("submitted", 409), ("draft", 409), ("cancelled", 409)]
)
def test_project_must_be_approved(api, world, unchanged, state, code):
    p = make_project(world.member_a, world.community_a, status=state)
    with unchanged():
        resp = api.post(
            "member_a",
            "/api/v1/deliveries",
            body(world, p, participants=[{"user_id": world.member_a.id, "hours": 1}]),
        )
    assert resp.status_code == code


def test_hidden_project_is_404(api, world, unchanged):
    p = make_project(world.member_a, world.community_a, status="draft")
    with unchanged():
        resp = api.post(
            "member_b",
            "/api/v1/deliveries",
            body(world, p, participants=[{"user_id": world.member_b.id, "hours": 1}]),
        )
    assert resp.status_code == 404


def _long(world, project, hours):
    start = hours_ago(30)
    return {
        "started_at": iso(start),
        "ended_at": iso(start + timedelta(hours=hours)),
    }


@pytest.mark.parametrize(
    "case, field",
    [
        ("ends_before_start", "ended_at"),
        ("future", "ended_at"),
        ("too_long", "ended_at"),
        ("too_old", "ended_at"),
        ("naive", "started_at"),
        ("hours_over_session", "participants.0.hours"),
        ("hours_over_cap", "participants.0.hours"),
        ("hours_zero", "participants.0.hours"),
        ("hours_negative", "participants.0.hours"),
        ("hours_tiny", "participants.0.hours"),
        ("hours_text", "participants.0.hours"),
        ("participant_not_on_team", "participants.1.user_id"),
        ("participant_pending", "participants.1.user_id"),
        ("participant_twice", "participants.1.user_id"),
        ("no_participants", "participants"),
        ("missing_participants", "participants"),
        ("participant_extra_field", "participants.0.minutes"),
        ("beneficiary_not_resident", "beneficiaries"),
        ("beneficiary_elsewhere", "beneficiaries"),
        ("beneficiary_is_participant", "beneficiaries"),
        ("beneficiary_twice", "beneficiaries"),
        ("need_elsewhere", "need_id"),
        ("need_unknown", "need_id"),
        ("no_show_not_on_team", "no_shows"),
        ("no_show_participated", "no_shows"),
        ("status_from_client", "status"),
        ("rating_deadline_from_client", "rating_deadline"),
        ("missing_project", "project_id"),
    ],
)
def test_delivery_validation(api, world, project, unchanged, case, field):
    start = hours_ago(3)
    over: dict = {}
    part = lambda uid, h=1: {"user_id": uid, "hours": h}  # noqa: E731
    me = world.member_a.id
    if case == "ends_before_start":
        over = {"ended_at": iso(start - timedelta(hours=1))}
    elif case == "future":
        over = {"ended_at": iso(start + timedelta(hours=5)), "participants": [part(me)]}
    elif case == "too_long":
        over = _long(world, project, 25) | {"participants": [part(me)]}
    elif case == "too_old":
        old = hours_ago(24 * 8)
        over = {
            "started_at": iso(old),
            "ended_at": iso(old + timedelta(hours=1)),
            "participants": [part(me)],
        }
    elif case == "naive":
        over = {"started_at": start.replace(tzinfo=None).isoformat()}
    elif case == "hours_over_session":
        over = {"participants": [part(me, 2.5)]}
    elif case == "hours_over_cap":
        over = _long(world, project, 10) | {"participants": [part(me, 9)]}
    elif case == "hours_zero":
        over = {"participants": [part(me, 0)]}
    elif case == "hours_negative":
        over = {"participants": [part(me, -1)]}
    elif case == "hours_tiny":
        over = {"participants": [part(me, 0.001)]}
    elif case == "hours_text":
        over = {"participants": [part(me, "two")]}
    elif case == "participant_not_on_team":
        over = {"participants": [part(me), part(world.member_b.id)]}
    elif case == "participant_pending":
        over = {"participants": [part(me), part(world.member_a3.id)]}
    elif case == "participant_twice":
        over = {"participants": [part(me), part(me)]}
    elif case == "no_participants":
        over = {"participants": []}
    elif case == "missing_participants":
        data = body(world, project)
        del data["participants"]
        over = None
    elif case == "participant_extra_field":
        over = {"participants": [{"user_id": me, "hours": 1, "minutes": 60}]}
    elif case == "beneficiary_not_resident":
        over = {"beneficiaries": [world.member_a3.id]}
    elif case == "beneficiary_elsewhere":
        over = {"beneficiaries": [world.resident_b.id]}
    elif case == "beneficiary_is_participant":
        over = {"beneficiaries": [world.member_a2.id]}
    elif case == "beneficiary_twice":
        over = {"beneficiaries": [world.resident_a.id, world.resident_a.id]}
    elif case == "need_elsewhere":
        over = {"need_id": make_need(world.resident_b, world.community_b).id}
    elif case == "need_unknown":
        over = {"need_id": 99999}
    elif case == "no_show_not_on_team":
        over = {"no_shows": [world.member_a3.id]}
    elif case == "no_show_participated":
        over = {"no_shows": [world.member_a2.id]}
    elif case == "status_from_client":
        over = {"status": "settled"}
    elif case == "rating_deadline_from_client":
        over = {"rating_deadline": iso(hours_ago(-100))}
    elif case == "missing_project":
        data = body(world, project)
        del data["project_id"]
        over = None
    payload = data if over is None else body(world, project, **over)
    with unchanged():
        resp = api.post("member_a", "/api/v1/deliveries", payload)
    assert resp.status_code == 422, resp.get_json()
    assert field in problem_fields(resp), problem_fields(resp)


def test_beneficiary_who_is_also_a_member_of_the_team(api, world, project):
    """A resident who is also a team member may be a beneficiary when not serving."""
    from volunteer_market.database import atomic
    from volunteer_market.models import Role
    from volunteer_market.services import users as user_service

    with atomic():
        user_service.grant_role(None, world.member_a2, Role.RESIDENT, world.community_a)
    data = body(
        world,
        project,
        participants=[{"user_id": world.member_a.id, "hours": 1}],
        beneficiaries=[world.member_a2.id],
    )
    assert api.post("member_a", "/api/v1/deliveries", data).status_code == 201


def test_no_shows_and_need(api, world, project):
    need = make_need(world.resident_a, world.community_a)
    api.post("member_a", f"/api/v1/needs/{need.id}/claim")
    data = body(
        world,
        project,
        participants=[{"user_id": world.member_a.id, "hours": 2}],
        beneficiaries=[],
        no_shows=[world.member_a2.id],
        need_id=need.id,
    )
    resp = api.post("member_a", "/api/v1/deliveries", data)
    assert resp.status_code == 201, resp.get_json()
    d = resp.get_json()
    assert d["no_shows"] == [world.member_a2.id]
    assert d["need_id"] == need.id
    # the need's resident became a beneficiary (no code handed to the recorder)
    assert [b["user_id"] for b in d["beneficiaries"]] == [world.resident_a.id]
    assert "rating_codes" not in d
    assert api.get("resident_a", f"/api/v1/needs/{need.id}").get_json()["status"] == "closed"
    kinds = [n["kind"] for n in api.get("member_a2", "/api/v1/notifications").get_json()["items"]]
    assert "delivery.no_show" in kinds


def test_need_taken_by_someone_else(api, world, project, unchanged):
    need = make_need(world.resident_a, world.community_a)
    api.post("member_a3", f"/api/v1/needs/{need.id}/claim")
    with unchanged():
        resp = api.post("member_a", "/api/v1/deliveries", body(world, project, need_id=need.id))
    assert resp.status_code == 422 and "need_id" in problem_fields(resp)


def test_need_already_closed_is_409(api, world, project, unchanged):
    need = make_need(world.resident_a, world.community_a)
    api.post("resident_a", f"/api/v1/needs/{need.id}/cancel")
    with unchanged():
        resp = api.post("member_a", "/api/v1/deliveries", body(world, project, need_id=need.id))
    assert resp.status_code == 409


def test_need_dispatched_to_another_project(api, world, project, unchanged):
    other = make_project(world.member_a, world.community_a, status="approved", title="健康义诊")
    need = make_need(world.resident_a, world.community_a)
    api.post("secretary_a", f"/api/v1/needs/{need.id}/dispatch", {"project_id": other.id})
    with unchanged():
        resp = api.post("member_a", "/api/v1/deliveries", body(world, project, need_id=need.id))
    assert resp.status_code == 422 and "need_id" in problem_fields(resp)


def test_overlapping_sessions_are_refused(api, world, project, unchanged):
    start = hours_ago(5)
    first = body(
        world,
        project,
        started_at=iso(start),
        ended_at=iso(start + timedelta(hours=2)),
        participants=[{"user_id": world.member_a2.id, "hours": 2}],
    )
    assert api.post("member_a", "/api/v1/deliveries", first).status_code == 201
    other = make_project(world.member_a, world.community_a, status="approved", title="健康义诊")
    overlapping = body(
        world,
        other,
        started_at=iso(start + timedelta(hours=1)),
        ended_at=iso(start + timedelta(hours=3)),
        participants=[
            {"user_id": world.member_a.id, "hours": 1},
            {"user_id": world.member_a2.id, "hours": 1},
        ],
    )
    # member_a2 is not on `other`'s team: first make them so
    from ..factories import add_team_member

    add_team_member(other, world.member_a2)
    with unchanged():
        resp = api.post("member_a", "/api/v1/deliveries", overlapping)
    assert resp.status_code == 409
    assert "overlapping" in resp.get_json()["detail"]
    # back to back is fine
    after = body(
        world,
        other,
        started_at=iso(start + timedelta(hours=2)),
        ended_at=iso(start + timedelta(hours=3)),
        participants=[{"user_id": world.member_a2.id, "hours": 1}],
    )
    assert api.post("member_a", "/api/v1/deliveries", after).status_code == 201


@pytest.mark.parametrize(
    "who, code",
    [
        ("member_a", 200),  # owner / recorder
        ("member_a2", 200),  # participant
        ("resident_a", 200),  # beneficiary
        ("secretary_a", 200),
        ("grid_a1", 200),
        ("officer_street", 200),
        ("member_a3", 404),  # only pending on the team
        ("resident_b", 404),
        ("secretary_b", 404),
        ("member_b", 404),
        ("officer_other", 404),
    ],
)
def test_delivery_visibility(api, world, project, who, code):
    recorded = make_delivery(
        project,
        world.member_a,
        participants=[(world.member_a, 2), (world.member_a2, 2)],
        beneficiaries=[world.resident_a],
    )
    assert api.get(who, f"/api/v1/deliveries/{recorded.delivery.id}").status_code == code
    listed = api.get(who, "/api/v1/deliveries").get_json()["items"]
    assert (recorded.delivery.id in [d["id"] for d in listed]) == (code == 200)


def test_project_deliveries_list(api, world, project):
    make_delivery(project, world.member_a, hours_ago=10)
    make_delivery(project, world.member_a, hours_ago=5)
    resp = api.get("secretary_a", f"/api/v1/projects/{project.id}/deliveries")
    assert resp.status_code == 200 and resp.get_json()["total"] == 2
    assert api.get("member_a", "/api/v1/deliveries/99999").status_code == 404


PNG = image_bytes("png")


def test_photo_upload(api, world, project, unchanged):
    recorded = make_delivery(project, world.member_a)
    url = f"/api/v1/deliveries/{recorded.delivery.id}/photo"
    with unchanged():
        assert api.put("member_a2", url, **multipart(PNG)).status_code == 403
        resp = api.put("member_a", url, **multipart(b"not an image"))
        assert resp.status_code == 422 and "file" in problem_fields(resp)
    resp = api.put("member_a", url, **multipart(PNG))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["photo_url"] == url
    got = api.get("secretary_a", url)
    assert got.status_code == 200 and same_picture(got.data, PNG)
    got.close()
    assert api.get("resident_b", url).status_code == 404
