"""Attendance: the rotating check-in code, check-in and check-out by the member with the
code, or marked by the owner for a signed-up member (a paper sheet, after the fact).

The code is six digits of an HMAC (application key) of the session's random key and the
number of the current :data:`CODE_WINDOW`; the current and the previous window are
accepted, so a code read off the screen a moment before it turns still works, and a code
copied to someone at home is dead within two windows. Wrong codes answer 422 and are
also slowed down by the API's rate limit.

Times (DESIGN.md "Sessions and attendance"): a member checks in or out with the code from
:data:`CHECK_IN_MARGIN` before the start until :data:`CHECK_IN_MARGIN` after the end;
the owner marks a member present from the same moment until the delivery is made (or
:data:`MARK_WINDOW` after the end). Only members who hold a place (``signed_up``) are
checked in: the place is what makes them a participant.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import (
    ProjectSession,
    SessionAttendance,
    SessionSignup,
    SessionStatus,
    SignupStatus,
    User,
    utcnow,
)
from .. import audit, permissions
from ..errors import Conflict, ValidationFailed
from .scheduling import get_visible_session, lock_session

#: A check-in code is valid for this window (and the one after it).
CODE_WINDOW = timedelta(minutes=5)
#: Members check in with the code from this long before the start until this long after
#: the end.
CHECK_IN_MARGIN = timedelta(minutes=30)
#: The owner may mark attendance until this long after the end (the delivery's window).
MARK_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class CheckInCode:
    code: str
    valid_until: datetime


def _window(moment: datetime) -> int:
    return int(moment.timestamp() // CODE_WINDOW.total_seconds())


def _code_for(session: ProjectSession, window: int) -> str:
    key = current_app.config["SECRET_KEY"]
    if isinstance(key, str):
        key = key.encode()
    message = f"session-check-in:{session.id}:{session.check_in_key}:{window}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def current_code(
    actor: User, session: ProjectSession, *, now: datetime | None = None
) -> CheckInCode:
    """Return the code shown at the venue now (the owner only).

    :raises Forbidden: not the project's owner.
    """
    permissions.require(actor, "session.manage", session)
    now = now or utcnow()
    window = _window(now)
    until = datetime.fromtimestamp((window + 1) * CODE_WINDOW.total_seconds(), UTC)
    return CheckInCode(_code_for(session, window), until)


def code_matches(session: ProjectSession, code: str, now: datetime) -> bool:
    """Whether ``code`` is the session's code of the current or the previous window."""
    window = _window(now)
    given = code.strip()
    return any(hmac.compare_digest(given, _code_for(session, w)) for w in (window, window - 1))


def _attendance_of(session_id: int, user_id: int) -> SessionAttendance | None:
    return db.session.execute(
        sa.select(SessionAttendance)
        .where(SessionAttendance.session_id == session_id, SessionAttendance.user_id == user_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _holds_place(session_id: int, user_id: int) -> bool:
    return (
        db.session.execute(
            sa.select(SessionSignup.id).where(
                SessionSignup.session_id == session_id,
                SessionSignup.user_id == user_id,
                SessionSignup.status == SignupStatus.SIGNED_UP,
            )
        ).first()
        is not None
    )


def _open_for_attendance(session: ProjectSession, now: datetime, *, by_owner: bool) -> None:
    if session.status == SessionStatus.CANCELLED:
        raise Conflict("The session is cancelled.", state=session.status.value)
    if session.delivery_id is not None:
        raise Conflict("The session's delivery is already recorded.", state="delivered")
    if now < session.starts_at - CHECK_IN_MARGIN:
        raise Conflict("Check-in opens 30 minutes before the session.", state="not_open")
    closes = session.ends_at + (MARK_WINDOW if by_owner else CHECK_IN_MARGIN)
    if now > closes:
        raise Conflict("Check-in for this session is closed.", state="closed")


def _whom(
    actor: User, session: ProjectSession, code: str | None, user_id: int | None, now: datetime
) -> tuple[int, bool]:
    """Return who is checked in or out and whether the owner marks them.

    :raises Forbidden: a code from a non-member; a user id from someone not the owner.
    :raises ValidationFailed: neither or both of code and user id; a wrong code; a user
        id of someone without a place.
    """
    if (code is None) == (user_id is None):
        raise ValidationFailed(
            "Give either the check-in code or a member's user_id.",
            errors={"code": ["Give either code or user_id."]},
        )
    if user_id is not None:
        permissions.require(actor, "session.manage", session)
        _open_for_attendance(session, now, by_owner=True)
        if not _holds_place(session.id, user_id):
            raise ValidationFailed(
                "That member holds no place in this session.",
                errors={"user_id": ["Not signed up for this session."]},
            )
        return user_id, True
    assert code is not None
    permissions.require(actor, "session.attend", session)
    _open_for_attendance(session, now, by_owner=False)
    if not code_matches(session, code, now):
        raise ValidationFailed(
            "Wrong or expired check-in code.", errors={"code": ["Wrong or expired code."]}
        )
    if not _holds_place(session.id, actor.id):
        raise Conflict("You hold no place in this session: sign up first.", state="no_place")
    return actor.id, False


def check_in(
    actor: User,
    session_id: int,
    *,
    code: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> SessionAttendance:
    """Check a member in: ``code`` for oneself, or ``user_id`` by the owner.

    :raises NotFound: the actor may not see the session.
    :raises Forbidden: see :func:`_whom`.
    :raises Conflict: cancelled, delivered, outside the check-in time, already checked in,
        no place.
    :raises ValidationFailed: wrong code, or the member holds no place.
    """
    now = now or utcnow()
    get_visible_session(actor, session_id)
    session = lock_session(session_id)
    member_id, marked = _whom(actor, session, code, user_id, now)
    if _attendance_of(session.id, member_id) is not None:
        raise Conflict("Already checked in.", state="checked_in")
    row = SessionAttendance(
        session_id=session.id,
        user_id=member_id,
        checked_in_at=now,
        marked_by_id=actor.id if marked else None,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        actor,
        "session.check_in",
        "session",
        session.id,
        area_id=session.community_id,
        detail={"user_id": member_id, "marked": marked},
    )
    return row


def check_out(
    actor: User,
    session_id: int,
    *,
    code: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> SessionAttendance:
    """Check a member out (the same two ways as :func:`check_in`).

    :raises Conflict: not checked in, or already checked out (and see :func:`check_in`).
    """
    now = now or utcnow()
    get_visible_session(actor, session_id)
    session = lock_session(session_id)
    member_id, _marked = _whom(actor, session, code, user_id, now)
    row = _attendance_of(session.id, member_id)
    if row is None:
        raise Conflict("Not checked in.", state="not_checked_in")
    if row.checked_out_at is not None:
        raise Conflict("Already checked out.", state="checked_out")
    row.checked_out_at = max(now, row.checked_in_at)
    db.session.flush()
    audit.record(
        actor,
        "session.check_out",
        "session",
        session.id,
        area_id=session.community_id,
        detail={"user_id": member_id},
    )
    return row


def attendance_of(session_id: int) -> list[SessionAttendance]:
    """Return the session's attendance rows (with users), in check-in order."""
    return list(
        db.session.scalars(
            sa.select(SessionAttendance)
            .where(SessionAttendance.session_id == session_id)
            .options(selectinload(SessionAttendance.user))
            .order_by(SessionAttendance.checked_in_at, SessionAttendance.id)
        )
    )


def minutes_served(session: ProjectSession, row: SessionAttendance) -> int:
    """Return a participant's minutes: check-in to check-out within the session's time
    (to the end for one who checked in and never out); the whole session for a member
    the owner marked present."""
    if row.marked_by_id is not None:
        return session.minutes
    start = max(row.checked_in_at, session.starts_at)
    end = min(row.checked_out_at or session.ends_at, session.ends_at)
    return max(0, int((end - start).total_seconds() // 60))


def attendance_row(row_id: int) -> SessionAttendance:
    """Return one attendance row with its user loaded."""
    return db.session.execute(
        sa.select(SessionAttendance)
        .where(SessionAttendance.id == row_id)
        .options(selectinload(SessionAttendance.user))
        .execution_options(populate_existing=True)
    ).scalar_one()
