"""Sessions: scheduling (owner of an approved project), listing with counts, cancelling."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.models import Notification

from ..factories import make_project
from ..projects.conftest import problem_fields
from .conftest import make_session, now, sign_up


def _body(**over):
    start = now() + timedelta(days=1)
    data = {
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "place": "社区活动室",
        "slots": 3,
    }
    data.update(over)
    return data


def test_owner_schedules_a_session(api, project):
    resp = api.post("member_a", f"/api/v1/projects/{project.id}/sessions", _body())
    assert resp.status_code == 201, resp.get_json()
    s = resp.get_json()
    assert (s["slots"], s["signed_up"], s["waitlisted"], s["status"]) == (3, 0, 0, "scheduled")
    assert s["place"] == "社区活动室" and s["my_status"] is None and s["delivery_id"] is None


@pytest.mark.parametrize("who", ["member_a2", "member_b", "secretary_a", "resident_a"])
def test_only_the_owner_schedules(api, project, unchanged, who):
    with unchanged():
        resp = api.post(who, f"/api/v1/projects/{project.id}/sessions", _body())
    assert resp.status_code == 403


def test_a_project_not_approved_takes_no_sessions(api, world, unchanged):
    draft = make_project(world.member_a, world.community_a)
    with unchanged():
        resp = api.post("member_a", f"/api/v1/projects/{draft.id}/sessions", _body())
    assert resp.status_code == 409


def test_a_project_the_caller_cannot_see_is_404(api, world, unchanged):
    draft = make_project(world.member_a, world.community_a)
    with unchanged():
        assert (
            api.post("member_b", f"/api/v1/projects/{draft.id}/sessions", _body()).status_code
            == 404
        )
        assert api.get("member_b", f"/api/v1/projects/{draft.id}/sessions").status_code == 404
        assert api.post("member_a", "/api/v1/projects/999999/sessions", _body()).status_code == 404


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"slots": 0}, "slots"),
        ({"slots": 501}, "slots"),
        ({"slots": "many"}, "slots"),
        ({"slots": 2.5}, "slots"),
        ({"place": "  "}, "place"),
        ({"place": "x" * 201}, "place"),
        ({"starts_at": "2026-13-01T00:00:00+00:00"}, "starts_at"),
        ({"starts_at": "2030-01-01T00:00:00"}, "starts_at"),  # no time zone
        ({"ends_at": None}, "ends_at"),
        ({"extra": 1}, "extra"),
    ],
)
def test_malformed_fields_are_422(api, project, unchanged, over, field):
    with unchanged():
        resp = api.post("member_a", f"/api/v1/projects/{project.id}/sessions", _body(**over))
    assert resp.status_code == 422, resp.get_json()
    assert field in problem_fields(resp)


@pytest.mark.parametrize(
    ("start", "length", "field"),
    [
        (timedelta(days=1), timedelta(0), "ends_at"),
        (timedelta(days=1), -timedelta(hours=1), "ends_at"),
        (timedelta(days=1), timedelta(hours=25), "ends_at"),
        (-timedelta(days=8), timedelta(hours=1), "starts_at"),
        (timedelta(days=400), timedelta(hours=1), "starts_at"),
    ],
)
def test_times_out_of_order_or_range_are_422(api, project, unchanged, start, length, field):
    begin = now() + start
    body = _body(starts_at=begin.isoformat(), ends_at=(begin + length).isoformat())
    with unchanged():
        resp = api.post("member_a", f"/api/v1/projects/{project.id}/sessions", body)
    assert resp.status_code == 422
    assert field in problem_fields(resp)


def test_missing_body_and_malformed_json(api, project, unchanged):
    path = f"/api/v1/projects/{project.id}/sessions"
    with unchanged():
        assert api.post("member_a", path, {}).status_code == 422
        resp = api.client.post(
            path, data="{", content_type="application/json", headers=api.headers(api.world.member_a)
        )
        assert resp.status_code == 400


def test_list_shows_counts_and_my_status(api, world, project):
    session = make_session(project, slots=1)
    sign_up(world.member_a2, session)
    sign_up(world.member_a3, session)
    later = make_session(project, starts_in=48)
    for who, mine in (("member_a2", "signed_up"), ("member_a3", "waitlisted"), ("member_b", None)):
        resp = api.get(who, f"/api/v1/projects/{project.id}/sessions")
        assert resp.status_code == 200
        items = resp.get_json()["items"]
        assert [i["id"] for i in items] == [session.id, later.id]
        assert (items[0]["signed_up"], items[0]["waitlisted"], items[0]["slots"]) == (1, 1, 1)
        assert items[0]["my_status"] == mine
        assert (items[1]["signed_up"], items[1]["waitlisted"]) == (0, 0)
    assert api.get("member_a3", f"/api/v1/sessions/{session.id}").get_json()["my_status"] == (
        "waitlisted"
    )


def test_owner_cancels_and_people_are_told(api, world, project):
    session = make_session(project, slots=1)
    sign_up(world.member_a2, session)
    sign_up(world.member_a3, session)
    with_unchanged = api.post("member_a2", f"/api/v1/sessions/{session.id}/cancel")
    assert with_unchanged.status_code == 403
    resp = api.post("member_a", f"/api/v1/sessions/{session.id}/cancel")
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    told = {n.user_id for n in api_notifications("session.cancelled")}
    assert told == {world.member_a2.id, world.member_a3.id}
    assert api.post("member_a", f"/api/v1/sessions/{session.id}/cancel").status_code == 409
    assert api.post("member_a3", f"/api/v1/sessions/{session.id}/signups").status_code == 409


def api_notifications(kind: str) -> list[Notification]:
    import sqlalchemy as sa

    from volunteer_market.extensions import db

    db.session.rollback()
    return list(db.session.scalars(sa.select(Notification).where(Notification.kind == kind)))


def test_a_past_session_cannot_be_cancelled(api, world, project, unchanged):
    session = make_session(project, starts_in=-3, hours=2)
    with unchanged():
        assert api.post("member_a", f"/api/v1/sessions/{session.id}/cancel").status_code == 409
