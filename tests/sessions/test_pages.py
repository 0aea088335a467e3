"""Session pages: the project page's list and form, a session page (sign up / cancel,
the owner's code, QR, attendance, marking, the delivery), the check-in form, the feed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import ProjectSession, SessionAttendance, SessionSignup
from volunteer_market.services import sessions as session_service

from ..projects.conftest import assert_csp_clean, fresh, post, text
from .conftest import make_session, now, sign_up


def test_project_page_lists_sessions_and_the_owner_schedules_one(as_user, world, project):
    make_session(project, slots=2)
    page = as_user("member_a").get(f"/projects/{project.id}")
    html = text(page)
    assert page.status_code == 200 and "社区活动室" in html and 'id="sessions"' in html
    assert 'name="slots"' in html  # the owner's form
    assert_csp_clean(html)
    assert 'name="slots"' not in text(as_user("member_a2").get(f"/projects/{project.id}"))
    start = (now() + timedelta(days=2)).astimezone().strftime("%Y-%m-%dT%H:%M")
    end = (now() + timedelta(days=2, hours=1)).astimezone().strftime("%Y-%m-%dT%H:%M")
    resp = post(
        as_user("member_a"),
        f"/projects/{project.id}/sessions",
        {"starts_at": start, "ends_at": end, "place": "小区广场", "slots": "4"},
    )
    assert resp.status_code == 303 and "/sessions/" in resp.headers["Location"]
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProjectSession)) == 2


@pytest.mark.parametrize(
    "form",
    [
        {"starts_at": "", "ends_at": "", "place": "x", "slots": "4"},
        {
            "starts_at": "2030-01-01T10:00",
            "ends_at": "2030-01-01T09:00",
            "place": "x",
            "slots": "4",
        },
        {
            "starts_at": "2030-01-01T10:00",
            "ends_at": "2030-01-01T11:00",
            "place": "x",
            "slots": "0",
        },
        {"starts_at": "nonsense", "ends_at": "2030-01-01T11:00", "place": "", "slots": "x"},
    ],
)
def test_a_bad_session_form_changes_nothing(as_user, project, unchanged, form):
    with unchanged():
        resp = post(as_user("member_a"), f"/projects/{project.id}/sessions", form)
    assert resp.status_code == 303 and f"/projects/{project.id}" in resp.headers["Location"]


@pytest.mark.parametrize("who", ["member_a2", "member_b", "resident_a"])
def test_only_the_owner_posts_the_session_form(as_user, project, unchanged, who):
    form = {
        "starts_at": "2030-01-01T10:00",
        "ends_at": "2030-01-01T11:00",
        "place": "x",
        "slots": "4",
    }
    with unchanged():
        resp = post(as_user(who), f"/projects/{project.id}/sessions", form)
    assert resp.status_code == 403


def test_member_signs_up_and_cancels_on_the_session_page(as_user, world, project):
    session = make_session(project, slots=1)
    sign_up(world.member_a3, session)
    c = as_user("member_a2")
    html = text(c.get(f"/sessions/{session.id}"))
    assert "报名" in html and "已报名 1 / 1" in html
    assert "签到码" not in html  # the code is the owner's
    resp = post(c, f"/sessions/{session.id}/signup")
    assert resp.status_code == 303
    fresh()
    row = db.session.scalars(
        sa.select(SessionSignup).where(SessionSignup.user_id == world.member_a2.id)
    ).one()
    assert row.status.value == "waitlisted"
    assert "候补中" in text(c.get(f"/sessions/{session.id}"))
    assert post(c, f"/sessions/{session.id}/withdraw").status_code == 303
    fresh()
    assert db.session.get(SessionSignup, row.id).status.value == "cancelled"


def test_wrong_state_on_the_page_is_flashed_not_500(as_user, world, project, unchanged):
    past = make_session(project, starts_in=-3)
    with unchanged():
        resp = post(as_user("member_a2"), f"/sessions/{past.id}/signup")
        assert resp.status_code == 303
        assert post(as_user("member_a2"), f"/sessions/{past.id}/nonsense").status_code == 404
        assert post(as_user("resident_a"), f"/sessions/{past.id}/signup").status_code == 403
        assert as_user("member_a2").get("/sessions/999999").status_code == 404


def test_owner_sees_code_qr_attendance_and_marks_present(as_user, world, project):
    session = make_session(project, starts_in=-1 / 6, hours=2)
    sign_up(world.member_a2, session, at=now() - timedelta(hours=1))
    c = as_user("member_a")
    page = c.get(f"/sessions/{session.id}")
    html = text(page)
    assert page.headers["Cache-Control"] == "no-store"
    with atomic():
        code = session_service.current_code(world.member_a, session).code
    assert code in html and 'class="qr"' in html and "登记到场" in html
    assert_csp_clean(html)
    resp = post(c, f"/sessions/{session.id}/mark", {"user_id": str(world.member_a2.id)})
    assert resp.status_code == 303
    fresh()
    assert db.session.scalars(sa.select(SessionAttendance)).one().marked_by_id == world.member_a.id
    with_bad = post(c, f"/sessions/{session.id}/mark", {"user_id": "abc"})
    assert with_bad.status_code == 303  # flashed, nothing written
    assert (
        post(as_user("member_a2"), f"/sessions/{session.id}/mark", {"user_id": "1"}).status_code
        == 403
    )


def test_member_checks_in_with_the_code_form(as_user, world, project):
    session = make_session(project, starts_in=-1 / 6, hours=2)
    sign_up(world.member_a2, session, at=now() - timedelta(hours=1))
    c = as_user("member_a2")
    form = c.get(f"/sessions/{session.id}/check-in?code=123456")
    assert form.status_code == 200 and 'value="123456"' in text(form)
    assert_csp_clean(text(form))
    with atomic():
        code = session_service.current_code(world.member_a, session).code
    wrong = "000000" if code != "000000" else "000001"
    assert post(c, f"/sessions/{session.id}/check-in", {"code": wrong}).status_code == 422
    assert post(c, f"/sessions/{session.id}/check-in", {"code": "12"}).status_code == 422
    assert post(c, f"/sessions/{session.id}/check-in", {"code": ""}).status_code == 422
    ok = post(c, f"/sessions/{session.id}/check-in", {"code": code, "action": "in"})
    assert ok.status_code == 303
    again = post(c, f"/sessions/{session.id}/check-in", {"code": code, "action": "in"})
    assert again.status_code == 409
    out = post(c, f"/sessions/{session.id}/check-in", {"code": code, "action": "out"})
    assert out.status_code == 303
    fresh()
    assert db.session.scalars(sa.select(SessionAttendance)).one().checked_out_at is not None
    assert (
        post(as_user("member_b"), f"/sessions/{session.id}/check-in", {"code": code}).status_code
        == 403
    )


def test_owner_creates_the_delivery_on_the_page(as_user, world, project):
    at = now() - timedelta(hours=6)
    session = make_session(project, starts_in=1, hours=2, at=at)
    sign_up(world.member_a2, session, at=at)
    sign_up(world.member_a3, session, at=at)
    with atomic():
        session_service.check_in(
            world.member_a, session.id, user_id=world.member_a2.id, now=session.ends_at
        )
    c = as_user("member_a")
    assert "生成服务记录" in text(c.get(f"/sessions/{session.id}"))
    resp = post(c, f"/sessions/{session.id}/deliver", {"beneficiaries": str(world.resident_a.id)})
    assert resp.status_code == 303 and "/deliveries/" in resp.headers["Location"]
    fresh()
    delivery_id = db.session.get(ProjectSession, session.id).delivery_id
    assert delivery_id is not None
    again = post(c, f"/sessions/{session.id}/deliver", {"beneficiaries": str(world.resident_a.id)})
    assert again.status_code == 303  # 409 flashed; still one delivery
    assert "查看服务记录" in text(c.get(f"/sessions/{session.id}"))


def test_profile_shows_the_feed_and_resets_it(as_user, world, project, client):
    session = make_session(project)
    sign_up(world.member_a2, session)
    c = as_user("member_a2")
    html = text(c.get("/profile"))
    assert "/calendar/" in html
    url = html.split("/calendar/")[1].split(".ics")[0]
    feed = client.get(f"/calendar/{url}.ics")
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    body = feed.get_data(as_text=True)
    assert "BEGIN:VEVENT" in body and "社区活动室" in body
    assert post(c, "/profile", {"action": "calendar_reset"}).status_code == 302
    fresh()  # the plain client shares the test's database session
    assert client.get(f"/calendar/{url}.ics").status_code == 404
    new = text(c.get("/profile")).split("/calendar/")[1].split(".ics")[0]
    assert new != url and client.get(f"/calendar/{new}.ics").status_code == 200
    for bad in ("x", "1-abc", f"{world.member_a.id}-" + "0" * 32, "99999999999-" + "0" * 32):
        assert client.get(f"/calendar/{bad}.ics").status_code == 404


def test_home_lists_my_upcoming_sessions(as_user, world, project):
    upcoming = make_session(project)
    past = make_session(project, starts_in=-5, hours=1)
    sign_up(world.member_a2, upcoming)
    sign_up(world.member_a2, past, at=now() - timedelta(hours=6))
    html = text(as_user("member_a2").get("/"))
    assert "我的活动场次" in html and f"/sessions/{upcoming.id}" in html
    assert f'/sessions/{past.id}"' not in html
    assert "我的活动场次" not in text(as_user("member_a3").get("/"))


def test_the_page_offers_only_what_the_time_allows(as_user, world, project):
    """No 报名 after the end, no 取消报名 after the start, the code only around the session."""
    upcoming = make_session(project, starts_in=48)
    ended = make_session(project, starts_in=-5, hours=1)
    sign_up(world.member_a2, upcoming)
    html = text(as_user("member_a2").get(f"/sessions/{upcoming.id}"))
    assert "取消报名" in html and "签到 / 签退" not in html  # days ahead: no check-in yet
    owner_view = text(as_user("member_a").get(f"/sessions/{upcoming.id}"))
    assert "签到码" not in owner_view and ">报名<" in owner_view
    html = text(as_user("member_a3").get(f"/sessions/{ended.id}"))
    assert ">报名<" not in html
    owner_view = text(as_user("member_a").get(f"/sessions/{ended.id}"))
    assert "签到码" not in owner_view and ">报名<" not in owner_view
