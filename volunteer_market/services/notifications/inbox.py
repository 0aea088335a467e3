"""In-app notifications: list mine, count unread, mark read (written by ``audit.notify``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import Notification, User, utcnow


def list_for(user: User, *, unread_only: bool = False) -> sa.Select[Notification]:
    """Return a SELECT of ``user``'s notifications, newest first."""
    stmt = (
        sa.select(Notification)
        .where(Notification.user_id == user.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return stmt


def unread_count(user: User) -> int:
    """Return how many of ``user``'s notifications are unread."""
    return int(
        db.session.execute(
            sa.select(sa.func.count(Notification.id)).where(
                Notification.user_id == user.id, Notification.read_at.is_(None)
            )
        ).scalar_one()
    )


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    """Mark ``user``'s notifications (all, or the given ids) read; return how many changed.

    Ids of other users' notifications are ignored (never an error, never a leak).
    """
    stmt = (
        sa.update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if ids is not None:
        id_list = list(ids)
        if not id_list:
            return 0
        stmt = stmt.where(Notification.id.in_(id_list))
    return cast("sa.CursorResult[Any]", db.session.execute(stmt)).rowcount or 0
