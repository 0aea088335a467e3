"""Sign-up with a waitlist, cancel and promote (members of the project's community)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Notification, Role, SessionSignup

from ..factories import make_user
from .conftest import make_session, now, session_row, sign_up


def _signups(session_id: int) -> list[tuple[int, str]]:
    db.session.rollback()
    return [
        (s.user_id, s.status.value)
        for s in db.session.scalars(
            sa.select(SessionSignup)
            .where(SessionSignup.session_id == session_id)
            .order_by(SessionSignup.id)
        )
    ]


def test_places_then_waitlist(api, world, project):
    session = make_session(project, slots=2)
    path = f"/api/v1/sessions/{session.id}/signups"
    statuses = [
        api.post(w, path).get_json()["status"] for w in ("member_a2", "member_a3", "member_a")
    ]
    assert statuses == ["signed_up", "signed_up", "waitlisted"]
    assert session_row(session.id).signed_up_count == 2


@pytest.mark.parametrize("who", ["member_b", "resident_a", "secretary_a", "grid_a1", "admin"])
def test_only_members_of_the_community_sign_up(api, project, unchanged, who):
    session = make_session(project)
    with unchanged():
        resp = api.post(who, f"/api/v1/sessions/{session.id}/signups")
    assert resp.status_code == 403


def test_a_second_signup_is_409(api, project, unchanged):
    session = make_session(project)
    assert api.post("member_a2", f"/api/v1/sessions/{session.id}/signups").status_code == 201
    with unchanged():
        assert api.post("member_a2", f"/api/v1/sessions/{session.id}/signups").status_code == 409


def test_no_signup_to_a_past_session(api, project, unchanged):
    session = make_session(project, starts_in=-3)
    with unchanged():
        resp = api.post("member_a2", f"/api/v1/sessions/{session.id}/signups")
    assert resp.status_code == 409


def test_unknown_session_is_404(api, unchanged):
    with unchanged():
        assert api.post("member_a2", "/api/v1/sessions/999999/signups").status_code == 404
        assert (
            api.client.delete(
                "/api/v1/sessions/999999/signups", headers=api.headers(api.world.member_a2)
            ).status_code
            == 404
        )
        assert api.post("member_a2", "/api/v1/sessions/99999999999/signups").status_code == 404


def test_cancel_promotes_the_first_waitlisted_and_tells_them(api, world, project):
    session = make_session(project, slots=1)
    extra = make_user("member_a4", (Role.MEMBER, world.community_a))
    sign_up(world.member_a2, session)
    sign_up(world.member_a3, session)  # first in the queue
    sign_up(extra, session)
    resp = api.client.delete(
        f"/api/v1/sessions/{session.id}/signups", headers=api.headers(world.member_a2)
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    assert _signups(session.id) == [
        (world.member_a2.id, "cancelled"),
        (world.member_a3.id, "signed_up"),
        (extra.id, "waitlisted"),
    ]
    notes = db.session.scalars(
        sa.select(Notification).where(Notification.kind == "session.promoted")
    )
    assert [n.user_id for n in notes] == [world.member_a3.id]
    assert session_row(session.id).signed_up_count == 1
    # signing up again goes to the end of the queue
    assert api.post("member_a2", f"/api/v1/sessions/{session.id}/signups").get_json()["status"] == (
        "waitlisted"
    )


def test_cancelling_a_waitlisted_place_promotes_nobody(api, world, project):
    session = make_session(project, slots=1)
    sign_up(world.member_a2, session)
    sign_up(world.member_a3, session)
    resp = api.client.delete(
        f"/api/v1/sessions/{session.id}/signups", headers=api.headers(world.member_a3)
    )
    assert resp.status_code == 200
    assert _signups(session.id) == [
        (world.member_a2.id, "signed_up"),
        (world.member_a3.id, "cancelled"),
    ]


def test_cancel_without_a_signup_is_404_and_after_the_start_409(api, world, project, unchanged):
    session = make_session(project, starts_in=1)
    headers = api.headers(world.member_a2)
    with unchanged():
        resp = api.client.delete(f"/api/v1/sessions/{session.id}/signups", headers=headers)
        assert resp.status_code == 404
    started = make_session(project, starts_in=-0.5, hours=2)
    sign_up(world.member_a2, started, at=now() - timedelta(hours=1))
    with unchanged():
        resp = api.client.delete(f"/api/v1/sessions/{started.id}/signups", headers=headers)
        assert resp.status_code == 409


def test_the_database_refuses_overfilling(app, world, project):
    """The CHECK is the last line: a raw UPDATE past ``slots`` fails."""
    from sqlalchemy.exc import IntegrityError

    session = make_session(project, slots=1)
    db.session.rollback()
    with pytest.raises(IntegrityError):
        db.session.execute(
            sa.text("UPDATE project_sessions SET signed_up_count = 2 WHERE id = :id"),
            {"id": session.id},
        )
        db.session.flush()
    db.session.rollback()
