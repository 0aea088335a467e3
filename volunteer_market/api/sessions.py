"""/api/v1 sessions of a project: schedule and list, sign-up with a waitlist, check-in
and check-out, the delivery from attendance, calendars (docs/sessions.md)."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from ..database import atomic
from ..http.links import calendar_feed_url, check_in_link
from ..models import Delivery, User
from ..schemas.deliveries import DeliveryOut
from ..schemas.sessions import (
    AttendanceIn,
    AttendanceListOut,
    AttendanceOut,
    CalendarLinkOut,
    CheckInCodeOut,
    SessionDeliveryIn,
    SessionIn,
    SessionListOut,
    SessionOut,
    SignupOut,
)
from ..services import deliveries as delivery_service
from ..services import permissions
from ..services import sessions as session_service
from .common import actor, make_blueprint, problem_response

project_sessions_blp = make_blueprint(
    "api_project_sessions", "/projects", "Sessions of a project (time, place, slots)"
)
blp = make_blueprint("api_sessions", "/sessions", "Sessions: sign-up, attendance, delivery")
calendar_blp = make_blueprint("api_calendar", "/me", "The signed-in user's calendar")


def _view(user: User, session_id: int) -> session_service.SessionView:
    session = session_service.get_visible_session(user, session_id)
    return session_service.present(user, [session])[0]


@project_sessions_blp.route("/<int:project_id>/sessions", methods=["POST"])
@project_sessions_blp.arguments(SessionIn)
@project_sessions_blp.response(201, SessionOut)
def create_session(data: dict, project_id: int) -> Any:
    """Schedule a session of an approved project (its owner): ``starts_at < ends_at``
    (at most 24 h, from 7 days ago to a year ahead), ``place``, ``slots`` 1-500."""
    user = actor()
    with atomic():
        session = session_service.create_session(user, project_id, **data)
        return session_service.present(user, [session])[0], 201


@project_sessions_blp.route("/<int:project_id>/sessions", methods=["GET"])
@project_sessions_blp.response(200, SessionListOut)
def list_sessions(project_id: int) -> dict:
    """The project's sessions in start order with ``signed_up``, ``waitlisted``,
    ``slots`` and the caller's own ``my_status`` (anyone who may see the project)."""
    return {"items": session_service.list_sessions(actor(), project_id)}


@blp.route("/<int:session_id>", methods=["GET"])
@blp.response(200, SessionOut)
def get_session(session_id: int) -> session_service.SessionView:
    """One session with its counts (anyone who may see the project)."""
    return _view(actor(), session_id)


@blp.route("/<int:session_id>/cancel", methods=["POST"])
@blp.response(200, SessionOut)
def cancel_session(session_id: int) -> session_service.SessionView:
    """Cancel a session that has not ended (the owner); those signed up are notified."""
    user = actor()
    with atomic():
        session_service.cancel_session(user, session_id)
        return _view(user, session_id)


@blp.route("/<int:session_id>/signups", methods=["POST"])
@blp.response(201, SignupOut)
def signup(session_id: int) -> Any:
    """Sign up (a member of the project's community): ``status`` is ``signed_up`` while
    places are free, else ``waitlisted``. 409 for a cancelled or past session, or a
    second sign-up."""
    with atomic():
        return session_service.signup(actor(), session_id), 201


@blp.route("/<int:session_id>/signups", methods=["DELETE"])
@blp.response(200, SignupOut)
def cancel_signup(session_id: int) -> Any:
    """Cancel one's sign-up before the start; a freed place goes to the first
    waitlisted member (notified). 404 without a sign-up."""
    with atomic():
        return session_service.cancel_signup(actor(), session_id)


@blp.route("/<int:session_id>/check-in-code", methods=["GET"])
@blp.response(200, CheckInCodeOut)
def check_in_code(session_id: int) -> Any:
    """The rotating check-in code shown at the venue, with a QR code of the check-in
    page (the owner). Valid for its 5-minute window and the next."""
    user = actor()
    session = session_service.get_visible_session(user, session_id)
    code = session_service.current_code(user, session)
    link = check_in_link(session.id, code.code)
    body = {"code": code.code, "valid_until": code.valid_until, "qr_svg": link["qr_svg"]}
    return body, 200, {"Cache-Control": "no-store"}


@blp.route("/<int:session_id>/attendance", methods=["GET"])
@blp.response(200, AttendanceListOut)
def attendance(session_id: int) -> dict:
    """Who holds a place or waits, and who checked in and out (the owner)."""
    user = actor()
    session = session_service.get_visible_session(user, session_id)
    permissions.require(user, "session.manage", session)
    present = {a.user_id: a for a in session_service.attendance_of(session.id)}
    items = []
    for s in session_service.signups_of(session.id):
        a = present.get(s.user_id)
        items.append(
            {
                "user_id": s.user_id,
                "display_name": s.user.display_name,
                "status": s.status.value,
                "checked_in_at": a.checked_in_at if a else None,
                "checked_out_at": a.checked_out_at if a else None,
                "marked": bool(a and a.marked_by_id is not None),
            }
        )
    return {"items": items}


@blp.route("/<int:session_id>/check-ins", methods=["POST"])
@blp.arguments(AttendanceIn)
@blp.response(201, AttendanceOut)
def check_in(data: dict, session_id: int) -> Any:
    """Check in: ``{code}`` (a member with a place, with the code shown at the venue,
    from 30 minutes before the start to 30 minutes after the end) or ``{user_id}`` (the
    owner for a member with a place, until the delivery). Wrong code → 422."""
    with atomic():
        row = session_service.check_in(actor(), session_id, **data)
        return session_service.attendance_row(row.id), 201


@blp.route("/<int:session_id>/check-outs", methods=["POST"])
@blp.arguments(AttendanceIn)
@blp.response(201, AttendanceOut)
def check_out(data: dict, session_id: int) -> Any:
    """Check out, the same two ways as the check-in."""
    with atomic():
        row = session_service.check_out(actor(), session_id, **data)
        return session_service.attendance_row(row.id), 201


@blp.route("/<int:session_id>/delivery", methods=["POST"])
@blp.arguments(SessionDeliveryIn)
@blp.response(201, DeliveryOut)
@blp.alt_response(409, response=problem_response(409))  # not over, delivered, overlap
def deliver(data: dict, session_id: int) -> Any:
    """Record the session's delivery from its attendance (the owner, after the end):
    participants and minutes from check-in/out, no-shows = places never checked in;
    ``{beneficiaries, need_id?}``. One per session (409 on the second)."""
    with atomic():
        delivery: Delivery = session_service.deliver(actor(), session_id, **data)
        return delivery_service.get_delivery(delivery.id), 201


def _ics(content: bytes, filename: str) -> Response:
    response = Response(content, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/<int:session_id>/calendar.ics", methods=["GET"])
@blp.response(200, content_type="text/calendar")
def session_ics(session_id: int) -> Response:
    """One session as iCalendar (anyone who may see the project)."""
    session = session_service.get_visible_session(actor(), session_id)
    content = session_service.to_ics([session], name="session", host=request.host)
    return _ics(content, f"session-{session.id}.ics")


@calendar_blp.route("/calendar.ics", methods=["GET"])
@calendar_blp.response(200, content_type="text/calendar")
def my_calendar() -> Response:
    """The caller's sessions (places, waitlist, and those of projects they own)."""
    user = actor()
    content = session_service.to_ics(
        session_service.sessions_of(user), name=user.display_name, host=request.host
    )
    return _ics(content, "sessions.ics")


@calendar_blp.route("/calendar-feed", methods=["GET"])
@calendar_blp.response(200, CalendarLinkOut)
def calendar_feed() -> Any:
    """The caller's private feed URL (for a calendar app; no token needed to read it)."""
    body = {"url": calendar_feed_url(session_service.feed_token(actor()))}
    return body, 200, {"Cache-Control": "no-store"}


@calendar_blp.route("/calendar-feed/reset", methods=["POST"])
@calendar_blp.response(200, CalendarLinkOut)
def reset_calendar_feed() -> Any:
    """Invalidate the caller's feed URL and return the new one."""
    with atomic():
        token = session_service.reset_feed_token(actor())
    return {"url": calendar_feed_url(token)}, 200, {"Cache-Control": "no-store"}
