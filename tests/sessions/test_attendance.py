"""Attendance: the rotating check-in code, check-in/out by code or by the owner."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.database import atomic
from volunteer_market.services import sessions as session_service
from volunteer_market.services.errors import Conflict, ValidationFailed

from ..projects.conftest import problem_fields
from .conftest import make_session, now, sign_up


@pytest.fixture
def running(world, project):
    """A session that started 10 minutes ago; member_a2 holds a place, member_a3 waits."""
    session = make_session(project, starts_in=-1 / 6, hours=2, slots=1, at=now())
    at = now() - timedelta(hours=1)
    sign_up(world.member_a2, session, at=at)
    sign_up(world.member_a3, session, at=at)
    return session


def _code(api, session) -> str:
    resp = api.get("member_a", f"/api/v1/sessions/{session.id}/check-in-code")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["qr_svg"].startswith("data:image/svg+xml")
    assert resp.headers["Cache-Control"] == "no-store"
    return body["code"]


def test_member_checks_in_and_out_with_the_code(api, world, running):
    code = _code(api, running)
    resp = api.post("member_a2", f"/api/v1/sessions/{running.id}/check-ins", {"code": code})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["user_id"] == world.member_a2.id and not resp.get_json()["marked"]
    out = api.post("member_a2", f"/api/v1/sessions/{running.id}/check-outs", {"code": code})
    assert out.status_code == 201 and out.get_json()["checked_out_at"]
    rows = api.get("member_a", f"/api/v1/sessions/{running.id}/attendance").get_json()["items"]
    assert [(r["user_id"], r["status"], bool(r["checked_in_at"])) for r in rows] == [
        (world.member_a2.id, "signed_up", True),
        (world.member_a3.id, "waitlisted", False),
    ]
    with_again = api.post("member_a2", f"/api/v1/sessions/{running.id}/check-ins", {"code": code})
    assert with_again.status_code == 409


@pytest.mark.parametrize("bad", ["000000", "12345", "abcdef", "", 123456, None])
def test_a_wrong_or_malformed_code_is_422(api, running, unchanged, bad):
    code = _code(api, running)
    if bad == "000000" and code == "000000":
        bad = "000001"
    with unchanged():
        resp = api.post("member_a2", f"/api/v1/sessions/{running.id}/check-ins", {"code": bad})
    assert resp.status_code == 422


def test_neither_or_both_of_code_and_user_id_is_422(api, world, running, unchanged):
    code = _code(api, running)
    path = f"/api/v1/sessions/{running.id}/check-ins"
    with unchanged():
        assert api.post("member_a", path, {}).status_code == 422
        both = {"code": code, "user_id": world.member_a2.id}
        assert api.post("member_a", path, both).status_code == 422
        assert api.post("member_a", path, {"code": code, "x": 1}).status_code == 422


def test_waitlisted_member_with_the_code_is_409(api, running, unchanged):
    code = _code(api, running)
    with unchanged():
        resp = api.post("member_a3", f"/api/v1/sessions/{running.id}/check-ins", {"code": code})
    assert resp.status_code == 409


@pytest.mark.parametrize("who", ["member_b", "resident_a", "secretary_a"])
def test_non_members_with_the_code_are_refused(api, running, unchanged, who):
    code = _code(api, running)
    with unchanged():
        resp = api.post(who, f"/api/v1/sessions/{running.id}/check-ins", {"code": code})
    assert resp.status_code in (403, 404)


@pytest.mark.parametrize("who", ["member_a2", "member_a3", "member_b", "secretary_a"])
def test_only_the_owner_sees_the_code_and_the_attendance(api, running, unchanged, who):
    with unchanged():
        assert api.get(who, f"/api/v1/sessions/{running.id}/check-in-code").status_code == 403
        assert api.get(who, f"/api/v1/sessions/{running.id}/attendance").status_code == 403


def test_owner_marks_a_member_present(api, world, running):
    path = f"/api/v1/sessions/{running.id}/check-ins"
    resp = api.post("member_a", path, {"user_id": world.member_a2.id})
    assert resp.status_code == 201 and resp.get_json()["marked"] is True


def test_owner_cannot_mark_someone_without_a_place(api, world, running, unchanged):
    path = f"/api/v1/sessions/{running.id}/check-ins"
    with unchanged():
        for user in (world.member_a3, world.member_b, world.resident_a):
            resp = api.post("member_a", path, {"user_id": user.id})
            assert resp.status_code == 422 and "user_id" in problem_fields(resp)
        assert api.post("member_a", path, {"user_id": 2**31}).status_code == 422


def test_a_member_cannot_mark_another(api, world, running, unchanged):
    with unchanged():
        resp = api.post(
            "member_a2", f"/api/v1/sessions/{running.id}/check-ins", {"user_id": world.member_a2.id}
        )
    assert resp.status_code == 403


def test_check_out_before_check_in_is_409(api, running, unchanged):
    code = _code(api, running)
    with unchanged():
        resp = api.post("member_a2", f"/api/v1/sessions/{running.id}/check-outs", {"code": code})
    assert resp.status_code == 409


def test_the_code_rotates_current_and_previous_window_accepted(app, world, project):
    start = now() + timedelta(days=1)
    session = make_session(project, starts_in=24, hours=2)
    sign_up(world.member_a2, session)
    t0 = start + timedelta(minutes=10)
    with atomic():
        code = session_service.current_code(world.member_a, session, now=t0).code
    window = session_service.CODE_WINDOW
    assert session_service.code_matches(session, code, t0)
    assert session_service.code_matches(session, code, t0 + window)
    assert not session_service.code_matches(session, code, t0 + 2 * window)
    with atomic():
        assert (
            session_service.current_code(world.member_a, session, now=t0 + 2 * window).code != code
        )
    with pytest.raises(ValidationFailed), atomic():
        session_service.check_in(world.member_a2, session.id, code=code, now=t0 + 2 * window)


def test_check_in_only_around_the_session(app, world, project):
    session = make_session(project, starts_in=24, hours=2)
    sign_up(world.member_a2, session)
    start = session.starts_at
    margin = session_service.CHECK_IN_MARGIN
    for moment in (
        start - margin - timedelta(minutes=1),
        session.ends_at + margin + timedelta(minutes=1),
    ):
        with atomic():
            code = session_service.current_code(world.member_a, session, now=moment).code
        with pytest.raises(Conflict), atomic():
            session_service.check_in(world.member_a2, session.id, code=code, now=moment)
    moment = start - margin + timedelta(minutes=1)
    with atomic():
        code = session_service.current_code(world.member_a, session, now=moment).code
        row = session_service.check_in(world.member_a2, session.id, code=code, now=moment)
    assert row.checked_in_at == moment
    # the owner may still mark people days later (a paper sheet), not a member by code
    later = session.ends_at + timedelta(days=2)
    with atomic():
        session_service.check_out(world.member_a, session.id, user_id=world.member_a2.id, now=later)


def test_minutes_served(app, world, project):
    session = make_session(project, starts_in=24, hours=2)
    sign_up(world.member_a2, session)
    sign_up(world.member_a3, session)
    start = session.starts_at
    with atomic():
        code = session_service.current_code(world.member_a, session, now=start).code
        a2 = session_service.check_in(world.member_a2, session.id, code=code, now=start)
        session_service.check_out(
            world.member_a2, session.id, code=code, now=start + timedelta(minutes=4)
        )
        a3 = session_service.check_in(
            world.member_a, session.id, user_id=world.member_a3.id, now=start
        )
    assert session_service.minutes_served(session, a2) == 4
    assert session_service.minutes_served(session, a3) == 120  # marked: the whole session
