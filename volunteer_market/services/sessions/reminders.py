"""The reminder before a session (``flask notifications remind``, from cron).

Every member holding a place (``signed_up``) in a scheduled session that starts within
:data:`REMIND_BEFORE` is notified once (``session.reminder``; through ``audit.notify``,
so the chosen e-mail reaches the outbox in the same transaction). Idempotent and safe
under concurrent runs: the conditional ``UPDATE session_signups SET reminded_at = now
WHERE reminded_at IS NULL ... RETURNING`` marks each place exactly once, so two cron runs
at the same minute never remind anybody twice. Waitlisted or cancelled sign-ups and
cancelled sessions get none; a member promoted from the waitlist after the reminder ran
is reminded by the next run (his row has no ``reminded_at``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from babel.dates import format_datetime

from ...extensions import db
from ...models import Project, ProjectSession, SessionSignup, SessionStatus, SignupStatus
from ...zones import DEFAULT_ZONE
from .. import audit

#: How long before its start a session is reminded of.
REMIND_BEFORE = timedelta(hours=24)

_signups = cast(sa.Table, SessionSignup.__table__)


def remind_upcoming(now: datetime, within: timedelta = REMIND_BEFORE) -> int:
    """Remind once every member with a place in a session starting within ``within``;
    return how many were reminded. Runs in the caller's transaction."""
    due = (
        sa.select(ProjectSession.id)
        .where(
            ProjectSession.status == SessionStatus.SCHEDULED,
            ProjectSession.starts_at > now,
            ProjectSession.starts_at <= now + within,
        )
        .scalar_subquery()
    )
    rows = db.session.execute(
        _signups.update()
        .where(
            _signups.c.session_id.in_(due),
            _signups.c.status == SignupStatus.SIGNED_UP,
            _signups.c.reminded_at.is_(None),
        )
        .values(reminded_at=now)
        .returning(_signups.c.user_id, _signups.c.session_id)
    ).all()
    if not rows:
        return 0
    sessions = {
        s.id: (s, title)
        for s, title in db.session.execute(
            sa.select(ProjectSession, Project.title)
            .join(Project, Project.id == ProjectSession.project_id)
            .where(ProjectSession.id.in_({r.session_id for r in rows}))
        )
    }
    for row in rows:
        session, title = sessions[row.session_id]
        audit.notify(
            row.user_id,
            "session.reminder",
            object_type="session",
            object_id=session.id,
            params={
                "title": title,
                # the community's local time, as the member reads it on a poster
                "when": format_datetime(
                    session.starts_at, "yyyy-MM-dd HH:mm", tzinfo=DEFAULT_ZONE, locale="zh_CN"
                ),
                "place": session.place,
            },
        )
    return len(rows)
