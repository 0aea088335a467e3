"""The delivery from a session's attendance, through the delivery service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.database import atomic
from volunteer_market.models import Role
from volunteer_market.services import sessions as session_service

from ..factories import make_delivery, make_need, make_user
from ..projects.conftest import problem_fields
from .conftest import make_session, now, session_row, sign_up


@pytest.fixture
def finished(world, project):
    """A session 5 h to 3 h ago: member_a2 checked in by code for 90 minutes, member_a3
    marked by the owner, a newcomer (not on the team) checked in and never out, and
    member_a4 held a place and never came."""
    at = now() - timedelta(hours=6)
    session = make_session(project, starts_in=1, hours=2, slots=5, at=at)
    newcomer = make_user("newcomer", (Role.MEMBER, world.community_a))
    absent = make_user("member_a4", (Role.MEMBER, world.community_a))
    for m in (world.member_a2, world.member_a3, newcomer, absent):
        sign_up(m, session, at=at)
    start = session.starts_at
    with atomic():
        code = session_service.current_code(world.member_a, session, now=start).code
        session_service.check_in(world.member_a2, session.id, code=code, now=start)
        out = start + timedelta(minutes=90)
        code = session_service.current_code(world.member_a, session, now=out).code
        session_service.check_out(world.member_a2, session.id, code=code, now=out)
        code = session_service.current_code(
            world.member_a, session, now=start + timedelta(minutes=30)
        ).code
        session_service.check_in(newcomer, session.id, code=code, now=start + timedelta(minutes=30))
        session_service.check_in(
            world.member_a, session.id, user_id=world.member_a3.id, now=start + timedelta(hours=3)
        )
    return session, newcomer, absent


def test_owner_creates_the_delivery_from_attendance(api, world, finished):
    session, newcomer, absent = finished
    resp = api.post(
        "member_a",
        f"/api/v1/sessions/{session.id}/delivery",
        {"beneficiaries": [world.resident_a.id]},
    )
    assert resp.status_code == 201, resp.get_json()
    d = resp.get_json()
    assert {(p["user_id"], p["minutes"]) for p in d["participants"]} == {
        (world.member_a2.id, 90),
        (world.member_a3.id, 120),
        (newcomer.id, 90),
    }
    assert d["no_shows"] == [absent.id]
    assert [b["user_id"] for b in d["beneficiaries"]] == [world.resident_a.id]
    assert d["started_at"].startswith(session.starts_at.isoformat()[:16])
    assert session_row(session.id).delivery_id == d["id"]
    again = api.post(
        "member_a",
        f"/api/v1/sessions/{session.id}/delivery",
        {"beneficiaries": [world.resident_a.id]},
    )
    assert again.status_code == 409
    # attendance is frozen with the delivery
    late = api.post("member_a", f"/api/v1/sessions/{session.id}/check-ins", {"user_id": absent.id})
    assert late.status_code == 409


def test_delivery_with_a_need_closes_it(api, world, finished):
    session, *_ = finished
    need = make_need(world.resident_a, world.community_a)
    resp = api.post(
        "member_a",
        f"/api/v1/sessions/{session.id}/delivery",
        {"beneficiaries": [], "need_id": need.id},
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["need_id"] == need.id
    assert [b["user_id"] for b in resp.get_json()["beneficiaries"]] == [world.resident_a.id]


@pytest.mark.parametrize("who", ["member_a2", "member_b", "secretary_a", "resident_a"])
def test_only_the_owner_creates_it(api, world, finished, unchanged, who):
    session, *_ = finished
    with unchanged():
        resp = api.post(who, f"/api/v1/sessions/{session.id}/delivery", {"beneficiaries": []})
    assert resp.status_code == 403


def test_bad_input_is_4xx_and_changes_nothing(api, world, finished, unchanged):
    session, *_ = finished
    path = f"/api/v1/sessions/{session.id}/delivery"
    with unchanged():
        assert api.post("member_a", path, {}).status_code == 422
        assert api.post("member_a", path, {"beneficiaries": "x"}).status_code == 422
        assert api.post("member_a", path, {"beneficiaries": [0]}).status_code == 422
        resp = api.post("member_a", path, {"beneficiaries": [world.resident_b.id]})
        assert resp.status_code == 422 and "beneficiaries" in problem_fields(resp)
        resp = api.post("member_a", path, {"beneficiaries": [world.member_a2.id]})
        assert resp.status_code == 422  # a participant is no beneficiary
    other_need = make_need(world.resident_b, world.community_b)
    with unchanged():
        resp = api.post("member_a", path, {"beneficiaries": [], "need_id": other_need.id})
        assert resp.status_code == 422 and "need_id" in problem_fields(resp)
        assert (
            api.post(
                "member_a", "/api/v1/sessions/999999/delivery", {"beneficiaries": []}
            ).status_code
            == 404
        )


def test_not_over_yet_is_409(api, world, project, unchanged):
    session = make_session(project, starts_in=-1, hours=2)
    with unchanged():
        resp = api.post(
            "member_a", f"/api/v1/sessions/{session.id}/delivery", {"beneficiaries": []}
        )
    assert resp.status_code == 409


def test_nobody_attended_is_422(api, world, project, unchanged):
    at = now() - timedelta(hours=6)
    session = make_session(project, starts_in=1, hours=2, at=at)
    sign_up(world.member_a2, session, at=at)
    with unchanged():
        resp = api.post(
            "member_a", f"/api/v1/sessions/{session.id}/delivery", {"beneficiaries": []}
        )
    assert resp.status_code == 422 and "participants" in problem_fields(resp)


def test_the_overlap_rule_still_holds(api, world, project, finished, unchanged):
    """member_a2 already has a hand-recorded delivery over the same hours: 409."""
    session, *_ = finished
    make_delivery(
        project,
        world.member_a,
        participants=[(world.member_a2, 1)],
        hours_ago=4.5,
        length_hours=1,
    )
    with unchanged():
        resp = api.post(
            "member_a", f"/api/v1/sessions/{session.id}/delivery", {"beneficiaries": []}
        )
    assert resp.status_code == 409


def test_the_recording_window_still_holds(app, world, project):
    """A session older than the rating window can no longer become a delivery (422)."""
    from volunteer_market.services.errors import ValidationFailed

    at = now() - timedelta(days=6, hours=23)
    session = make_session(project, starts_in=0.5, hours=1, at=at)
    sign_up(world.member_a2, session, at=at)
    with atomic():
        session_service.check_in(
            world.member_a, session.id, user_id=world.member_a2.id, now=session.ends_at
        )
    with pytest.raises(ValidationFailed) as caught, atomic():
        session_service.deliver(
            world.member_a, session.id, beneficiaries=[], now=now() + timedelta(days=1)
        )
    assert "ended_at" in (caught.value.errors or {})


def test_a_cancelled_session_makes_no_delivery(api, world, project, unchanged):
    session = make_session(project, starts_in=1)
    assert api.post("member_a", f"/api/v1/sessions/{session.id}/cancel").status_code == 200
    with unchanged():
        resp = api.post(
            "member_a", f"/api/v1/sessions/{session.id}/delivery", {"beneficiaries": []}
        )
    assert resp.status_code == 409
