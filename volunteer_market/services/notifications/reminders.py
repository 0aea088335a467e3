"""Reminders (``flask notifications remind``, from cron): the notifications that are due
because time passed, not because someone acted.

:func:`remind_due` is the one hook. Each kind of reminder is a function
``(now) -> int`` in :data:`REMINDERS` that notifies through ``audit.notify`` (so its
messages reach the outbox in the same transaction) and is idempotent: it marks what it
reminded (a ``reminded_at`` column, a conditional ``UPDATE ... WHERE reminded_at IS
NULL``), so a second run the same minute reminds nobody twice.

``"sessions"`` reminds every member holding a place of a session that starts within a
day (``services/sessions/reminders.py``, guarded by ``session_signups.reminded_at``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .. import redemptions, sessions


def _redemptions_expiring(now: datetime) -> int:
    """Holds that expire within two days (``redemptions.REMIND_BEFORE``), once each."""
    return redemptions.remind_expiring(now)


#: Every reminder, by name, in the order run: ``(now) -> how many were reminded``.
REMINDERS: dict[str, Callable[[datetime], int]] = {
    "redemptions": _redemptions_expiring,
    "sessions": sessions.remind_upcoming,
}


def remind_due(now: datetime) -> dict[str, int]:
    """Run every reminder in the caller's transaction; return how many each one sent."""
    return {name: reminder(now) for name, reminder in REMINDERS.items()}
