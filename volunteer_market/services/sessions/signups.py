"""Sign-up with a waitlist, cancellation and the promotion of the first waitlisted.

Every step runs after :func:`scheduling.lock_session`, so sign-ups and cancellations of
one session are serialised on both engines; the place itself is taken by a conditional
``UPDATE ... SET signed_up_count = signed_up_count + 1 WHERE signed_up_count < slots``
(row count 0: the member joins the waitlist), and the database's CHECK
``signed_up_count <= slots`` and UNIQUE ``(session_id, user_id)`` are the last line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import (
    ProjectSession,
    SessionSignup,
    SessionStatus,
    SignupStatus,
    User,
    utcnow,
)
from .. import audit, permissions
from ..errors import Conflict, NotFound
from .scheduling import get_visible_session, lock_session, project_of


def _take_place(session_id: int) -> bool:
    """Take one place if one is free (conditional UPDATE); return whether it was taken."""
    result = cast(
        "sa.CursorResult[Any]",
        db.session.execute(
            sa.update(ProjectSession)
            .where(
                ProjectSession.id == session_id,
                ProjectSession.signed_up_count < ProjectSession.slots,
            )
            .values(signed_up_count=ProjectSession.signed_up_count + 1)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1


def _free_place(session_id: int) -> None:
    db.session.execute(
        sa.update(ProjectSession)
        .where(ProjectSession.id == session_id, ProjectSession.signed_up_count > 0)
        .values(signed_up_count=ProjectSession.signed_up_count - 1)
        .execution_options(synchronize_session=False)
    )


def _signup_of(session_id: int, user_id: int) -> SessionSignup | None:
    return db.session.execute(
        sa.select(SessionSignup)
        .where(SessionSignup.session_id == session_id, SessionSignup.user_id == user_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def signup(actor: User, session_id: int, *, now: datetime | None = None) -> SessionSignup:
    """Sign ``actor`` up: a free place (``signed_up``) or the end of the waitlist.

    :raises NotFound: the actor may not see the session.
    :raises Forbidden: not a member of the session's community.
    :raises Conflict: the session is cancelled or over; the actor already holds a
        place or waits for one.
    """
    now = now or utcnow()
    get_visible_session(actor, session_id)
    session = lock_session(session_id)
    permissions.require(actor, "session.signup", session)
    if session.status == SessionStatus.CANCELLED:
        raise Conflict("The session is cancelled.", state=session.status.value)
    if session.ends_at <= now or session.delivery_id is not None:
        raise Conflict("The session is over.", state="over")
    row = _signup_of(session.id, actor.id)
    if row is not None and row.status != SignupStatus.CANCELLED:
        raise Conflict("You are already signed up for this session.", state=row.status.value)
    status = SignupStatus.SIGNED_UP if _take_place(session.id) else SignupStatus.WAITLISTED
    if row is None:
        row = SessionSignup(session_id=session.id, user_id=actor.id, status=status, queued_at=now)
        db.session.add(row)
    else:
        row.status, row.queued_at, row.cancelled_at = status, now, None
    db.session.flush()
    audit.record(
        actor,
        "session.signup",
        "session",
        session.id,
        area_id=session.community_id,
        detail={"status": status.value},
    )
    return row


def cancel_signup(actor: User, session_id: int, *, now: datetime | None = None) -> SessionSignup:
    """Cancel ``actor``'s sign-up before the session starts; a freed place goes to the
    first waitlisted member, who is notified.

    :raises NotFound: the actor may not see the session, or holds no sign-up.
    :raises Conflict: the session has started (or is cancelled).
    """
    now = now or utcnow()
    get_visible_session(actor, session_id)
    session = lock_session(session_id)
    row = _signup_of(session.id, actor.id)
    if row is None or row.status == SignupStatus.CANCELLED:
        raise NotFound("You are not signed up for this session.")
    if session.status == SessionStatus.CANCELLED:
        raise Conflict("The session is cancelled.", state=session.status.value)
    if session.starts_at <= now:
        raise Conflict("The session has started; it can no longer be cancelled.", state="started")
    held_place = row.status == SignupStatus.SIGNED_UP
    row.status, row.cancelled_at = SignupStatus.CANCELLED, now
    db.session.flush()
    promoted = None
    if held_place:
        _free_place(session.id)
        promoted = _promote_first(session)
    audit.record(
        actor,
        "session.signup_cancel",
        "session",
        session.id,
        area_id=session.community_id,
        detail={"promoted_id": promoted.user_id if promoted is not None else None},
    )
    return row


def _promote_first(session: ProjectSession) -> SessionSignup | None:
    """Give a free place to the first waitlisted member (queue order) and tell them."""
    first = db.session.execute(
        sa.select(SessionSignup)
        .where(
            SessionSignup.session_id == session.id,
            SessionSignup.status == SignupStatus.WAITLISTED,
        )
        .order_by(SessionSignup.queued_at, SessionSignup.id)
        .limit(1)
    ).scalar_one_or_none()
    if first is None or not _take_place(session.id):
        return None
    first.status = SignupStatus.SIGNED_UP
    db.session.flush()
    audit.notify(
        first.user_id,
        "session.promoted",
        object_type="session",
        object_id=session.id,
        params={"title": project_of(session).title},
    )
    return first


def signed_up_ids(session_id: int) -> list[int]:
    """Return the ids of the members holding a place, in sign-up order."""
    return list(
        db.session.scalars(
            sa.select(SessionSignup.user_id)
            .where(
                SessionSignup.session_id == session_id,
                SessionSignup.status == SignupStatus.SIGNED_UP,
            )
            .order_by(SessionSignup.queued_at, SessionSignup.id)
        )
    )


def signups_of(session_id: int) -> list[SessionSignup]:
    """Return the session's active sign-ups (places, then the waitlist in order), with users."""
    return list(
        db.session.scalars(
            sa.select(SessionSignup)
            .where(
                SessionSignup.session_id == session_id,
                SessionSignup.status != SignupStatus.CANCELLED,
            )
            .options(selectinload(SessionSignup.user))
            .order_by(SessionSignup.status, SessionSignup.queued_at, SessionSignup.id)
        )
    )
