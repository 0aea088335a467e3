"""Scheduling sessions: create one for an approved project, read, list with counts, cancel."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    MAX_SLOTS,
    PLACE_MAX,
    Project,
    ProjectSession,
    ProjectStatus,
    SessionSignup,
    SessionStatus,
    SignupStatus,
    User,
    utcnow,
)
from .. import audit, permissions
from ..errors import Conflict, NotFound, ValidationFailed
from ..projects import get_visible_project

#: A session lasts at most this long (as a delivery does).
MAX_SESSION = timedelta(hours=24)
#: Sessions are planned at most this far ahead.
MAX_AHEAD = timedelta(days=366)
#: A session may be entered after the fact (a paper sheet) within this long.
MAX_BEHIND = timedelta(days=7)


@dataclass(frozen=True)
class SessionView:
    """A session with its counts and the caller's own status (``None``: not signed up)."""

    session: ProjectSession
    signed_up: int
    waitlisted: int
    my_status: str | None


def get_session(session_id: int) -> ProjectSession:
    """Return the session.

    :raises NotFound: no such session.
    """
    session = db.session.get(ProjectSession, session_id)
    if session is None:
        raise NotFound("Session not found.")
    return session


def get_visible_session(actor: User, session_id: int) -> ProjectSession:
    """Return the session if ``actor`` may see its project.

    :raises NotFound: it does not exist or the actor may not see it.
    """
    session = get_session(session_id)
    if not permissions.may(actor, "session.view", session):
        raise NotFound("Session not found.")
    return session


def lock_session(session_id: int) -> ProjectSession:
    """Lock the session row (PostgreSQL ``FOR UPDATE``; SQLite writes under ``BEGIN
    IMMEDIATE``) and return it fresh: the one lock of sign-ups, attendance and delivery.

    :raises NotFound: no such session.
    """
    session = db.session.execute(
        sa.select(ProjectSession)
        .where(ProjectSession.id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if session is None:
        raise NotFound("Session not found.")
    return session


def create_session(
    actor: User,
    project_id: int,
    *,
    starts_at: datetime,
    ends_at: datetime,
    place: str,
    slots: int,
    now: datetime | None = None,
) -> ProjectSession:
    """Schedule a session of an approved project (its owner).

    :raises NotFound: the actor may not see the project.
    :raises Forbidden: the actor is not the project's owner.
    :raises Conflict: the project is not approved.
    :raises ValidationFailed: times out of order or range, place empty, slots out of range.
    """
    now = now or utcnow()
    project = get_visible_project(actor, project_id)
    permissions.require(actor, "session.create", project)
    if project.status != ProjectStatus.APPROVED:
        raise Conflict(
            f"A project that is {project.status.value} takes no sessions.",
            state=project.status.value,
        )
    starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    _check_fields(starts_at, ends_at, place, slots, now)
    session = ProjectSession(
        project_id=project.id,
        community_id=project.community_id,
        created_by_id=actor.id,
        starts_at=starts_at,
        ends_at=ends_at,
        place=place.strip(),
        slots=slots,
        signed_up_count=0,
        status=SessionStatus.SCHEDULED,
        check_in_key=secrets.token_hex(32),
    )
    db.session.add(session)
    db.session.flush()
    audit.record(
        actor,
        "session.create",
        "session",
        session.id,
        area_id=project.community_id,
        detail={"project_id": project.id, "slots": slots},
    )
    return session


def _check_fields(
    starts_at: datetime, ends_at: datetime, place: str, slots: int, now: datetime
) -> None:
    errors: dict[str, list[str]] = {}
    if ends_at <= starts_at:
        errors.setdefault("ends_at", []).append("Must be after starts_at.")
    elif ends_at - starts_at > MAX_SESSION:
        errors.setdefault("ends_at", []).append("A session lasts at most 24 hours.")
    if starts_at < now - MAX_BEHIND:
        errors.setdefault("starts_at", []).append("At most 7 days in the past.")
    elif starts_at > now + MAX_AHEAD:
        errors.setdefault("starts_at", []).append("At most one year ahead.")
    if not place.strip() or len(place) > PLACE_MAX:
        errors.setdefault("place", []).append(f"Between 1 and {PLACE_MAX} characters.")
    if not 1 <= slots <= MAX_SLOTS:
        errors.setdefault("slots", []).append(f"Between 1 and {MAX_SLOTS}.")
    if errors:
        raise ValidationFailed("The session has invalid fields.", errors=errors)


def cancel_session(actor: User, session_id: int, *, now: datetime | None = None) -> ProjectSession:
    """Cancel a session that has not ended (its owner); tell who holds a place or waits.

    :raises NotFound: the actor may not see the session.
    :raises Forbidden: not the project's owner.
    :raises Conflict: already cancelled, already over, or its delivery is recorded.
    """
    now = now or utcnow()
    get_visible_session(actor, session_id)
    session = lock_session(session_id)
    permissions.require(actor, "session.manage", session)
    if session.status == SessionStatus.CANCELLED:
        raise Conflict("The session is already cancelled.", state=session.status.value)
    if session.delivery_id is not None or session.ends_at <= now:
        raise Conflict("The session is over.", state="over")
    session.status = SessionStatus.CANCELLED
    people = db.session.scalars(
        sa.select(SessionSignup.user_id).where(
            SessionSignup.session_id == session.id,
            SessionSignup.status != SignupStatus.CANCELLED,
        )
    ).all()
    title = db.session.execute(
        sa.select(Project.title).where(Project.id == session.project_id)
    ).scalar_one()
    for user_id in people:
        if user_id != actor.id:
            audit.notify(
                user_id,
                "session.cancelled",
                object_type="session",
                object_id=session.id,
                params={"title": title},
            )
    audit.record(actor, "session.cancel", "session", session.id, area_id=session.community_id)
    db.session.flush()
    return session


def counts(session_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Return ``{session_id: (signed_up, waitlisted)}`` (one grouped query)."""
    result = dict.fromkeys(session_ids, (0, 0))
    if not session_ids:
        return result
    rows = db.session.execute(
        sa.select(SessionSignup.session_id, SessionSignup.status, sa.func.count())
        .where(
            SessionSignup.session_id.in_(list(session_ids)),
            SessionSignup.status != SignupStatus.CANCELLED,
        )
        .group_by(SessionSignup.session_id, SessionSignup.status)
    ).all()
    for sid, status, n in rows:
        up, wait = result[sid]
        if status == SignupStatus.SIGNED_UP:
            up = n
        else:
            wait = n
        result[sid] = (up, wait)
    return result


def present(actor: User, sessions: Sequence[ProjectSession]) -> list[SessionView]:
    """Return the sessions with their counts and ``actor``'s own status."""
    ids = [s.id for s in sessions]
    numbers = counts(ids)
    mine: dict[int, str] = {}
    if ids:
        mine = {
            sid: status.value
            for sid, status in db.session.execute(
                sa.select(SessionSignup.session_id, SessionSignup.status).where(
                    SessionSignup.session_id.in_(ids),
                    SessionSignup.user_id == actor.id,
                    SessionSignup.status != SignupStatus.CANCELLED,
                )
            ).all()
        }
    return [SessionView(s, *numbers[s.id], mine.get(s.id)) for s in sessions]


def list_sessions(
    actor: User, project_id: int, *, upcoming_only: bool = False, now: datetime | None = None
) -> list[SessionView]:
    """Return the project's sessions in start order (whoever may see the project).

    :raises NotFound: the actor may not see the project.
    """
    project = get_visible_project(actor, project_id)
    stmt = sa.select(ProjectSession).where(ProjectSession.project_id == project.id)
    if upcoming_only:
        stmt = stmt.where(ProjectSession.ends_at > (now or utcnow()))
    stmt = stmt.order_by(ProjectSession.starts_at, ProjectSession.id).limit(MAX_LISTED)
    return present(actor, db.session.scalars(stmt).all())


#: Most sessions one list returns (a project runs a few a week, so a year fits).
MAX_LISTED = 200


def project_of(session: ProjectSession) -> Project:
    """Return the session's project."""
    project = db.session.get(Project, session.project_id)
    assert project is not None
    return project
