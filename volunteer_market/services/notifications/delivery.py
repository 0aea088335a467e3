"""Delivery of the outbox (``flask notifications deliver``): claim, send, mark.

Design overview
---------------
A ``deliver`` run takes each step in its own transaction (opened by the command):

1. :func:`claim` -- due rows (``pending`` whose ``next_attempt_at`` has come, or
   ``sending`` rows whose claim is older than the lease: a run that died) become
   ``sending`` with ``attempts + 1``, ``claimed_at`` and this run's ``claim_token``,
   committed *before* anything is sent. On PostgreSQL the candidates are read with
   ``FOR UPDATE SKIP LOCKED`` (two runs take disjoint rows without waiting); on SQLite
   ``atomic()`` holds the write lock (``BEGIN IMMEDIATE``). On both the UPDATE repeats
   the due guard (``WHERE status = 'pending' ...``), so a row is claimed by one run.
2. :func:`prepare` renders the message (read only) and :func:`send` sends it outside any
   transaction, with the row's ``idempotency_key`` (the e-mail's ``Message-ID``, the
   webhook body's ``idempotency_key`` and an ``Idempotency-Key`` header).
3. :func:`mark_sent` / :func:`mark_failed` -- ``UPDATE ... WHERE id = :id AND
   claim_token = :token AND status = 'sending'``: only the run holding the claim marks.
   A failure goes back to ``pending`` after an exponential backoff
   (``NOTIFY_BACKOFF_SECONDS * 2**(attempts-1)``, at most ``NOTIFY_BACKOFF_MAX_SECONDS``),
   or to ``failed`` once ``NOTIFY_MAX_ATTEMPTS`` attempts were made.

Guarantee: **at least once, with a dedup key**. Two runs never send one row at the same
time (the claim), and a run that sends and then dies before the mark leaves the row
``sending``: once the lease (``NOTIFY_LEASE_SECONDS``, longer than any send's timeout)
has passed, the next run sends it again *with the same key*, so the receiver can tell
the repeat. A row whose lease ran out after its last allowed attempt becomes ``failed``
(``interrupted``): it may or may not have arrived. Nothing is lost, nothing is repeated
without the same key.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from ...extensions import db
from ...models import (
    Channel,
    CommunityWebhook,
    Notification,
    NotificationPreference,
    OutboxMessage,
    OutboxStatus,
    User,
)
from .texts import COMMUNITY_TEXTS, render_text

log = logging.getLogger(__name__)

_outbox = cast(sa.Table, OutboxMessage.__table__)

#: A group robot's text is at most 2048 bytes: 600 characters of Chinese stay below it.
MAX_WEBHOOK_TEXT = 600


class DeliveryError(Exception):
    """A send failed; ``code`` says how (an error class or status, nothing personal)."""

    def __init__(self, code: str, *, permanent: bool = False):
        super().__init__(code)
        self.code = code[:200]
        #: Retrying cannot help (the channel is no longer set up): fail now.
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """A rendered message, ready to send (read from the database, then detached)."""

    id: int
    channel: str
    attempts: int
    key: str
    #: E-mail address or webhook URL: never logged, never stored elsewhere.
    to: str
    subject: str
    body: str


def _setting(name: str) -> Any:
    return current_app.config[name]


def _due(now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    c = _outbox.c
    return sa.or_(
        sa.and_(c.status == OutboxStatus.PENDING.value, c.next_attempt_at <= now),
        sa.and_(c.status == OutboxStatus.SENDING.value, c.claimed_at <= now - lease),
    )


def claim(now: datetime, token: str, limit: int) -> list[int]:
    """Claim up to ``limit`` due rows under ``token`` (fresh for every claim); return
    their ids. Call inside one write transaction; commit it before sending.
    """
    c = _outbox.c
    lease = timedelta(seconds=_setting("NOTIFY_LEASE_SECONDS"))
    max_attempts = _setting("NOTIFY_MAX_ATTEMPTS")
    # a run died after its last allowed attempt: give up on it (it may have arrived)
    db.session.execute(
        _outbox.update()
        .where(
            c.status == OutboxStatus.SENDING.value,
            c.claimed_at <= now - lease,
            c.attempts >= max_attempts,
        )
        .values(status=OutboxStatus.FAILED.value, claim_token=None, last_error="interrupted")
    )
    candidates = list(
        db.session.scalars(
            sa.select(c.id)
            .where(_due(now, lease))
            .order_by(c.next_attempt_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not candidates:
        return []
    db.session.execute(
        _outbox.update()
        .where(c.id.in_(candidates), _due(now, lease))
        .values(
            status=OutboxStatus.SENDING.value,
            attempts=c.attempts + 1,
            claimed_at=now,
            claim_token=token,
        )
    )
    return list(
        db.session.scalars(
            sa.select(c.id).where(c.id.in_(candidates), c.claim_token == token).order_by(c.id)
        )
    )


def prepare(message_id: int) -> Outgoing:
    """Render the claimed row ``message_id`` for its channel (reads only).

    :raises DeliveryError: (permanent) the recipient turned the channel off, or the
        community removed its webhook, since the row was written.
    """
    row = db.session.get(OutboxMessage, message_id)
    if row is None:  # pragma: no cover - rows are never deleted while claimed
        raise DeliveryError("gone", permanent=True)
    if row.channel == Channel.EMAIL:
        note = cast(Notification, row.notification)
        pref = db.session.get(NotificationPreference, note.user_id)
        if pref is None or not pref.email_enabled or not pref.email:
            raise DeliveryError("channel_off", permanent=True)
        user = db.session.get(User, note.user_id)
        locale = (user.locale if user is not None else None) or _setting("BABEL_DEFAULT_LOCALE")
        with force_locale(locale):
            body = render_text(note.kind, note.params)
            subject = _("社区志愿服务通知")
            body = body + "\n\n" + _("请登录社区志愿服务平台查看详情。")
        return Outgoing(
            row.id, "email", row.attempts, row.idempotency_key, pref.email, subject, body
        )
    hook = db.session.get(CommunityWebhook, row.community_id)
    if hook is None:
        raise DeliveryError("channel_off", permanent=True)
    with force_locale(_setting("BABEL_DEFAULT_LOCALE")):
        body = render_text(row.kind, row.params, texts=COMMUNITY_TEXTS)
    return Outgoing(row.id, "wecom", row.attempts, row.idempotency_key, hook.url, "", body)


def send(message: Outgoing) -> None:
    """Send ``message`` on its channel with its idempotency key.

    :raises DeliveryError: the channel refused or could not be reached.
    """
    if message.channel == "email":
        _send_email(message)
    else:
        _post_webhook(message)


def _send_email(message: Outgoing) -> None:
    host = _setting("SMTP_HOST")
    if not host:
        raise DeliveryError("smtp_not_configured")
    mail = EmailMessage()
    mail["From"] = _setting("SMTP_FROM")
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False)
    domain = _setting("SMTP_FROM").rpartition("@")[2] or "localhost"
    mail["Message-ID"] = f"<{message.key}@{domain}>"
    mail["X-Idempotency-Key"] = message.key
    mail.set_content(message.body)
    try:
        with smtplib.SMTP(host, _setting("SMTP_PORT"), timeout=_setting("SMTP_TIMEOUT")) as smtp:
            if _setting("SMTP_STARTTLS"):
                smtp.starttls(context=ssl.create_default_context())
            if _setting("SMTP_USER"):
                smtp.login(_setting("SMTP_USER"), _setting("SMTP_PASSWORD"))
            smtp.send_message(mail)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"smtp {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(type(exc).__name__) from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A group robot answers itself: a redirect is refused, never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post_webhook(message: Outgoing) -> None:
    content = message.body[:MAX_WEBHOOK_TEXT]
    body = json.dumps(
        {"msgtype": "text", "text": {"content": content}, "idempotency_key": message.key},
        ensure_ascii=False,
    ).encode("utf-8")
    # the URL passed webhooks.check_url: https (or http where allowed) on allowed hosts
    request = urllib.request.Request(  # noqa: S310
        message.to,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": message.key},
    )
    try:
        with _opener.open(request, timeout=_setting("WECOM_WEBHOOK_TIMEOUT")) as resp:
            answer = resp.read(65536)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer's connection
        raise DeliveryError(f"http {exc.code}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        raise DeliveryError(type(exc).__name__) from None
    try:
        errcode = json.loads(answer.decode("utf-8")).get("errcode", 0)
    except (ValueError, AttributeError):
        raise DeliveryError("bad_answer") from None
    if errcode != 0:
        raise DeliveryError(f"wecom errcode {errcode}")


def _mine(message_id: int, token: str) -> sa.ColumnElement[bool]:
    c = _outbox.c
    return sa.and_(
        c.id == message_id, c.claim_token == token, c.status == OutboxStatus.SENDING.value
    )


def mark_sent(message_id: int, token: str, now: datetime) -> bool:
    """Mark the claimed row sent; return False if the claim was lost meanwhile."""
    result = db.session.execute(
        _outbox.update()
        .where(_mine(message_id, token))
        .values(status=OutboxStatus.SENT.value, sent_at=now, claim_token=None, last_error=None)
    )
    return bool(cast("sa.CursorResult[Any]", result).rowcount)


def mark_failed(message_id: int, token: str, error: DeliveryError, now: datetime) -> str | None:
    """Record a failed attempt: ``pending`` again after the backoff, or ``failed`` after
    the last attempt (or a permanent error); return the new status (None: claim lost)."""
    max_attempts = _setting("NOTIFY_MAX_ATTEMPTS")
    attempts = db.session.execute(
        sa.select(_outbox.c.attempts).where(_mine(message_id, token))
    ).scalar_one_or_none()
    if attempts is None:
        return None
    if error.permanent or attempts >= max_attempts:
        status, due = OutboxStatus.FAILED, now
    else:
        delay = min(
            _setting("NOTIFY_BACKOFF_SECONDS") * 2 ** (attempts - 1),
            _setting("NOTIFY_BACKOFF_MAX_SECONDS"),
        )
        status, due = OutboxStatus.PENDING, now + timedelta(seconds=delay)
    result = db.session.execute(
        _outbox.update()
        .where(_mine(message_id, token))
        .values(status=status.value, next_attempt_at=due, claim_token=None, last_error=error.code)
    )
    if not cast("sa.CursorResult[Any]", result).rowcount:
        return None
    log.info("outbox message %s attempt %s failed: %s", message_id, attempts, error.code)
    return status.value


def status_counts() -> dict[str, int]:
    """Return how many outbox rows are in each status."""
    rows = db.session.execute(
        sa.select(_outbox.c.status, sa.func.count()).group_by(_outbox.c.status)
    ).all()
    counts = {s.value: 0 for s in OutboxStatus}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def failed_count(community_ids: list[int] | None = None) -> int:
    """Return how many messages gave up (``failed``): those of these communities'
    webhooks, or every one (``None``, the admin)."""
    c = _outbox.c
    stmt = sa.select(sa.func.count()).where(c.status == OutboxStatus.FAILED.value)
    if community_ids is not None:
        stmt = stmt.where(c.community_id.in_(community_ids))
    return int(db.session.execute(stmt).scalar_one())
