"""Audit log and notifications: every state change records who, what, when, from where."""

from __future__ import annotations

from typing import Any

from ..extensions import db
from ..models import AuditEntry, Notification, User
from . import outbox
from .context import current_origin


def record(
    actor: User | None,
    action: str,
    object_type: str,
    object_id: int | None,
    *,
    area_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry (flushed with the caller's transaction)."""
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        area_id=area_id,
        detail=detail,
        origin=current_origin(),
    )
    db.session.add(entry)
    return entry


def notify(
    user_id: int,
    kind: str,
    *,
    object_type: str | None = None,
    object_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> Notification:
    """Queue an in-app notification for ``user_id`` in the caller's transaction, and its
    messages on the channels outside the app (``outbox.enqueue``, same transaction)."""
    note = Notification(
        user_id=user_id, kind=kind, object_type=object_type, object_id=object_id, params=params
    )
    db.session.add(note)
    outbox.enqueue(note)
    return note
