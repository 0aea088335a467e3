"""Notifications outside the app: the transactional outbox, the channels a person chose
and a community's 企业微信 group-robot webhook (docs/notifications.md)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .audit import Notification
from .types import UTCDateTime, str_enum, utcnow

#: Longest e-mail address accepted (RFC 5321 path limit).
MAX_EMAIL = 254
#: Longest webhook URL accepted.
MAX_WEBHOOK_URL = 500
#: The channels a person may choose (``in_app`` is always on; ``wecom`` is a community's).
PERSON_CHANNELS = ("in_app", "email")


class Channel(enum.StrEnum):
    """A way out of the app (in-app is not one: every notification is in-app)."""

    EMAIL = "email"
    WECOM = "wecom"  # the community's 企业微信 group robot


class OutboxStatus(enum.StrEnum):
    """Where an outbox row is: ``pending`` (due at ``next_attempt_at``), ``sending`` (a
    ``deliver`` run claimed it and may be sending it now), ``sent``, ``failed`` (gave up)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(Model):
    """One message to send on one channel, written in the transaction of the change.

    Written by ``services/notifications/outbox.py``; claimed, sent and marked by
    ``services/notifications/delivery.py`` (``flask notifications deliver``).
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        #: A person's message: one per (notification, channel).
        sa.UniqueConstraint("notification_id", "channel"),
        #: A community's message (webhook): one per event, however many people it concerns.
        sa.UniqueConstraint("community_id", "channel", "event_key"),
        sa.CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        sa.CheckConstraint(
            "(notification_id IS NOT NULL) OR (community_id IS NOT NULL)", name="has_target"
        ),
        #: The claim of ``deliver``: due rows of a status, oldest first.
        sa.Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "outbox_channel"))
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    #: The notification a person's message renders (``None`` for a community's).
    notification_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("notifications.id", ondelete="CASCADE")
    )
    #: The community whose webhook receives a community message.
    community_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id"))
    #: A community message's event (``kind:object_type:object_id``), for the UNIQUE above.
    event_key: Mapped[str | None] = mapped_column(sa.String(120))
    #: A community message's kind and parameters (a person's are the notification's).
    kind: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: Sent with every attempt (Message-ID, the webhook body): the receiver's dedup key.
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When the current ``sending`` claim was taken, and by which run (the mark's guard).
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The last failure: an error class and code only, never a URL, address or body.
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    notification: Mapped[Notification | None] = relationship(lazy="joined")


class NotificationPreference(Model):
    """The channels a person chose beyond in-app (always on): e-mail to an address."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    #: Where e-mail goes (personal data: shown only to its owner).
    email: Mapped[str | None] = mapped_column(sa.String(MAX_EMAIL))
    email_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CommunityWebhook(Model):
    """A community's 企业微信 group-robot URL (a secret: shown masked, never logged)."""

    __tablename__ = "community_webhooks"

    community_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id"), primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(MAX_WEBHOOK_URL))
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
