"""The transactional outbox: a notification's messages outside the app, written in the
transaction of the change (docs/notifications.md).

Design overview
---------------
``audit.notify`` calls :func:`enqueue` for every notification it adds. It writes, in the
caller's transaction (so a change that rolls back sends nothing):

- one ``email`` row when the recipient chose e-mail and gave an address;
- one ``wecom`` row for the community's group robot when the kind is a community event
  (:data:`COMMUNITY_KINDS`) and the community set a webhook URL. A community event
  notifies many people (every member of an evaluation's audience): the row is written
  once per event (``UNIQUE (community_id, channel, event_key)``, ``INSERT ... ON
  CONFLICT DO NOTHING``), never once per person.

Each row has its own random ``idempotency_key``, sent with every attempt.
``services/notifications/delivery.py`` (``flask notifications deliver``) claims, sends
and marks them. This module imports models only, so ``audit`` can import it.
"""

from __future__ import annotations

import secrets
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import (
    Channel,
    CommunityWebhook,
    Evaluation,
    Notification,
    NotificationPreference,
    OutboxMessage,
    OutboxStatus,
    Project,
    utcnow,
)
from .transaction_memo import TransactionMemo

#: Kinds that are also announced to the community's group robot: community events that
#: concern everyone (a project open to join, finished or called off; the annual
#: evaluation list published or final). Never a person's own business (points, ratings,
#: redemptions, team requests, appeals): those go to that person only.
COMMUNITY_KINDS = frozenset(
    {
        "project.approve",
        "project.complete",
        "project.cancel",
        "evaluation.published",
        "evaluation.final",
    }
)

#: The parameters a community message may carry (a title, a year, a community's name,
#: a notice period): never a comment, a person's name or anything personal.
COMMUNITY_PARAMS = frozenset({"title", "year", "community", "days"})


def new_key() -> str:
    """Return a fresh idempotency key (32 hex characters)."""
    return secrets.token_hex(16)


#: Whether a user wants notifications by e-mail (turned on, with an address), read once
#: per user and transaction (issue 21: a settlement asked once per notification, and
#: each ask flushed the notifications before it one by one). ``prepare`` reads the
#: preference again when it sends, so a change after the row was written still counts.
_WANTS_EMAIL: TransactionMemo[bool] = TransactionMemo(
    "outbox.wants_email", (NotificationPreference,)
)


#: Built once (an expanding bound list): each call binds the ids only.
_WANTS_EMAIL_OF = sa.select(NotificationPreference.user_id).where(
    NotificationPreference.user_id.in_(sa.bindparam("ids", expanding=True)),
    NotificationPreference.email_enabled.is_(True),
    NotificationPreference.email.is_not(None),
    NotificationPreference.email != "",
)


def _read_wants_email(user_ids: list[int]) -> dict[int, bool]:
    return dict.fromkeys(db.session.scalars(_WANTS_EMAIL_OF, {"ids": user_ids}), True)


def prefetch_preferences(user_ids: list[int]) -> None:
    """Read the e-mail preferences of users about to be notified, in one statement."""
    _WANTS_EMAIL.get_many(user_ids, _read_wants_email, False)


def _wants_email(user_id: int) -> bool:
    return _WANTS_EMAIL.get_many([user_id], _read_wants_email, False)[user_id]


def enqueue(note: Notification) -> None:
    """Write the outbox rows of ``note`` in the caller's transaction."""
    if _wants_email(note.user_id):
        db.session.add(
            OutboxMessage(
                channel=Channel.EMAIL,
                notification=note,
                kind=note.kind,
                idempotency_key=new_key(),
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
    if note.kind in COMMUNITY_KINDS:
        _enqueue_community(note)


def community_of(note: Notification) -> int | None:
    """Return the community a community event is about (its project's or evaluation's)."""
    if note.object_id is None:
        return None
    if note.object_type == "project":
        project = db.session.get(Project, note.object_id)
        return project.community_id if project is not None else None
    if note.object_type == "evaluation":
        evaluation = db.session.get(Evaluation, note.object_id)
        return evaluation.community_id if evaluation is not None else None
    return None


def _enqueue_community(note: Notification) -> None:
    community_id = community_of(note)
    if community_id is None or db.session.get(CommunityWebhook, community_id) is None:
        return
    table = cast(sa.Table, OutboxMessage.__table__)
    values = {
        "channel": Channel.WECOM.value,
        "status": OutboxStatus.PENDING.value,
        "community_id": community_id,
        "event_key": f"{note.kind}:{note.object_type}:{note.object_id}",
        "kind": note.kind,
        "params": {k: v for k, v in (note.params or {}).items() if k in COMMUNITY_PARAMS},
        "idempotency_key": new_key(),
        "attempts": 0,
        "next_attempt_at": utcnow(),
        "created_at": utcnow(),
    }
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values)
    db.session.execute(
        stmt.on_conflict_do_nothing(index_elements=["community_id", "channel", "event_key"])
    )
