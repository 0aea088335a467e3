"""The channels a person chose: in-app (always on) and e-mail to an address they give."""

from __future__ import annotations

from typing import Any

from flask import current_app

from ...extensions import db
from ...models import NotificationPreference, User, utcnow
from .. import audit
from ..errors import ValidationFailed


def email_available() -> bool:
    """Return True when this server can send e-mail (``SMTP_HOST`` is set)."""
    return bool(current_app.config.get("SMTP_HOST"))


def channels_of(user: User) -> dict[str, Any]:
    """Return ``user``'s channels, e-mail address and whether e-mail can be chosen."""
    pref = db.session.get(NotificationPreference, user.id)
    channels = ["in_app"]
    if pref is not None and pref.email_enabled and pref.email:
        channels.append("email")
    return {
        "channels": channels,
        "email": pref.email if pref is not None else None,
        "email_available": email_available(),
    }


def set_channels(user: User, channels: list[str], email: str | None) -> dict[str, Any]:
    """Set ``user``'s own channels and e-mail address (``None`` or empty: none).

    :raises ValidationFailed: e-mail chosen without an address, or the server sends none.
    """
    address = (email or "").strip() or None
    wants_email = "email" in channels
    if wants_email and address is None:
        raise ValidationFailed(
            "E-mail needs an address.", errors={"email": ["E-mail needs an address."]}
        )
    if wants_email and not email_available():
        raise ValidationFailed(
            "This server does not send e-mail.",
            errors={"channels": ["This server does not send e-mail."]},
        )
    pref = db.session.get(NotificationPreference, user.id)
    if pref is None:
        pref = NotificationPreference(user_id=user.id)
        db.session.add(pref)
    pref.email, pref.email_enabled, pref.updated_at = address, wants_email, utcnow()
    # the address is personal data: the audit entry says only what changed
    audit.record(user, "notification_channels.set", "user", user.id, detail={"email": wants_email})
    db.session.flush()
    return channels_of(user)
