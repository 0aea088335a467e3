"""Notifications: the in-app inbox, the channels outside the app a person chose, a
community's group-robot webhook and the delivery of the outbox (docs/notifications.md).

The outbox rows themselves are written by ``services/outbox.py`` (called by
``audit.notify``); ``reminders`` (``flask notifications remind``) is imported by its
command only, since it notifies through ``audit``.
"""

from __future__ import annotations

from .delivery import (
    DeliveryError,
    Outgoing,
    claim,
    failed_count,
    mark_failed,
    mark_sent,
    prepare,
    send,
    status_counts,
)
from .inbox import list_for, mark_read, unread_count
from .preferences import channels_of, email_available, set_channels
from .webhooks import mask_url, set_webhook, webhook_of

__all__ = [
    "DeliveryError",
    "Outgoing",
    "channels_of",
    "claim",
    "email_available",
    "failed_count",
    "list_for",
    "mark_failed",
    "mark_read",
    "mark_sent",
    "mask_url",
    "prepare",
    "send",
    "set_channels",
    "set_webhook",
    "status_counts",
    "unread_count",
    "webhook_of",
]
