"""Calendars: a person's sessions as iCalendar, one session's .ics, the private feed token.

The feed token is ``<user id>-<HMAC(application key, user id, generation)>``; the
generation lives in ``calendar_feeds`` (1 when there is no row) and a reset adds one,
which kills every copy of the old link. Nothing secret is stored, and the person can
always see the current link on their profile.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from icalendar import Calendar, Event

from ...extensions import db
from ...models import (
    CalendarFeed,
    Project,
    ProjectSession,
    SessionSignup,
    SessionStatus,
    SignupStatus,
    User,
    utcnow,
)
from .. import audit

#: The feed lists sessions that ended at most this long ago.
FEED_PAST = timedelta(days=30)
#: Most sessions in one feed.
FEED_MAX = 500


def _generation(user_id: int) -> int:
    generation = db.session.execute(
        sa.select(CalendarFeed.generation).where(CalendarFeed.user_id == user_id)
    ).scalar_one_or_none()
    return generation or 1


def _mac(user_id: int, generation: int) -> str:
    key = current_app.config["SECRET_KEY"]
    if isinstance(key, str):
        key = key.encode()
    message = f"calendar-feed:{user_id}:{generation}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def feed_token(user: User) -> str:
    """Return ``user``'s current private feed token."""
    return f"{user.id}-{_mac(user.id, _generation(user.id))}"


def reset_feed_token(user: User) -> str:
    """Invalidate ``user``'s feed link and return the new token."""
    row = db.session.get(CalendarFeed, user.id)
    if row is None:
        db.session.add(CalendarFeed(user_id=user.id, generation=2, reset_at=utcnow()))
    else:
        db.session.execute(
            sa.update(CalendarFeed)
            .where(CalendarFeed.user_id == user.id)
            .values(generation=CalendarFeed.generation + 1, reset_at=utcnow())
        )
    db.session.flush()
    audit.record(user, "calendar.reset", "user", user.id)
    db.session.expire_all()
    return feed_token(user)


def user_of_token(token: str) -> User | None:
    """Return the active user whose current feed token this is (None: no such token)."""
    head, _, mac = token.partition("-")
    if not head.isdigit() or len(head) > 10 or len(mac) != 32:
        return None
    user = db.session.get(User, int(head))
    if user is None or not user.is_active:
        return None
    if not hmac.compare_digest(mac, _mac(user.id, _generation(user.id))):
        return None
    return user


def sessions_of(user: User, *, now: datetime | None = None) -> list[ProjectSession]:
    """Return the scheduled sessions ``user`` holds a place in, waits for, or runs."""
    now = now or utcnow()
    mine = sa.select(SessionSignup.session_id).where(
        SessionSignup.user_id == user.id, SessionSignup.status != SignupStatus.CANCELLED
    )
    owned = sa.select(Project.id).where(Project.owner_id == user.id)
    return list(
        db.session.scalars(
            sa.select(ProjectSession)
            .where(
                ProjectSession.status == SessionStatus.SCHEDULED,
                ProjectSession.ends_at > now - FEED_PAST,
                sa.or_(ProjectSession.id.in_(mine), ProjectSession.project_id.in_(owned)),
            )
            .order_by(ProjectSession.starts_at, ProjectSession.id)
            .limit(FEED_MAX)
        )
    )


def project_titles(sessions: Sequence[ProjectSession]) -> dict[int, str]:
    """Return ``{project_id: title}`` of the sessions' projects (one query)."""
    if not sessions:
        return {}
    rows = db.session.execute(
        sa.select(Project.id, Project.title).where(Project.id.in_({s.project_id for s in sessions}))
    ).all()
    return dict(rows)


def upcoming_of(user: User, *, now: datetime | None = None) -> list[ProjectSession]:
    """Return ``user``'s sessions that have not ended (the home page)."""
    now = now or utcnow()
    return [s for s in sessions_of(user, now=now) if s.ends_at > now]


def to_ics(sessions: Sequence[ProjectSession], *, name: str, host: str) -> bytes:
    """Return the sessions as one iCalendar document (UTC times, one VEVENT each)."""
    titles = project_titles(sessions)
    cal = Calendar()
    cal.add("prodid", "-//Volunteer Market//sessions//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    stamp = utcnow()
    for session in sessions:
        event = Event()
        event.add("uid", f"session-{session.id}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", session.starts_at)
        event.add("dtend", session.ends_at)
        event.add("summary", titles.get(session.project_id, ""))
        event.add("location", session.place)
        cal.add_component(event)
    return cal.to_ical()
