"""The delivery made from a session's attendance, through the delivery service.

Participants are the members who attended (at least one minute, by
:func:`attendance.minutes_served`, capped at the policy's per-participant cap), no-shows
are the members who held a place and never checked in; ``record_delivery`` then applies
every rule of a hand-recorded delivery (the recording window, the overlap guard, the
beneficiaries, the need). The session's ``delivery_id`` is set under the session lock
by a conditional UPDATE, so a session makes at most one delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import Delivery, ProjectSession, SessionStatus, User, utcnow
from .. import audit, permissions
from ..deliveries import participant_cap_minutes, record_delivery
from ..errors import Conflict
from .attendance import attendance_of, minutes_served
from .scheduling import get_visible_session, lock_session
from .signups import signed_up_ids


def deliver(
    actor: User,
    session_id: int,
    *,
    beneficiaries: Sequence[int],
    need_id: int | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Record the session's delivery from its attendance (the owner, after the end).

    :raises NotFound: the actor may not see the session.
    :raises Forbidden: not the project's owner.
    :raises Conflict: cancelled, not over yet, or its delivery is already recorded;
        and every conflict of ``record_delivery`` (an overlapping delivery).
    :raises ValidationFailed: nobody attended, and every field error of
        ``record_delivery`` (beneficiaries, need, the recording window).
    """
    now = now or utcnow()
    get_visible_session(actor, session_id)
    session = lock_session(session_id)
    permissions.require(actor, "session.manage", session)
    if session.status == SessionStatus.CANCELLED:
        raise Conflict("The session is cancelled.", state=session.status.value)
    if session.delivery_id is not None:
        raise Conflict("This session's delivery is already recorded.", state="delivered")
    if session.ends_at > now:
        raise Conflict("The session is not over yet.", state="not_over")
    cap = participant_cap_minutes(session.community_id)
    participants: list[tuple[int, int]] = []
    for row in attendance_of(session.id):
        minutes = min(minutes_served(session, row), cap)
        if minutes >= 1:
            participants.append((row.user_id, minutes))
    attended = {user_id for user_id, _m in participants}
    no_shows = [uid for uid in signed_up_ids(session.id) if uid not in attended]
    recorded = record_delivery(
        actor,
        project_id=session.project_id,
        started_at=session.starts_at,
        ended_at=session.ends_at,
        participants=participants,
        beneficiaries=beneficiaries,
        need_id=need_id,
        no_shows=no_shows,
        attendees=attended | set(no_shows),
        now=now,
    )
    _link(session, recorded.delivery.id)
    audit.record(
        actor,
        "session.deliver",
        "session",
        session.id,
        area_id=session.community_id,
        detail={"delivery_id": recorded.delivery.id, "no_shows": len(no_shows)},
    )
    return recorded.delivery


def _link(session: ProjectSession, delivery_id: int) -> None:
    result = cast(
        "sa.CursorResult[Any]",
        db.session.execute(
            sa.update(ProjectSession)
            .where(ProjectSession.id == session.id, ProjectSession.delivery_id.is_(None))
            .values(delivery_id=delivery_id)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        raise Conflict("This session's delivery is already recorded.", state="delivered")
    session.delivery_id = delivery_id
