"""``notifications deliver`` and ``notifications remind`` (cron): the outbox's messages
leave the app; reminders that time made due are written (docs/notifications.md)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from ..database import atomic
from ..extensions import db
from ..models import utcnow
from ..services import notifications
from ..services.context import set_origin
from ..services.notifications import reminders
from .redemptions import parse_now


@dataclass
class DeliveryRun:
    """What one ``deliver`` run did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    #: Claims taken over by another run after the lease (the mark was refused).
    lost: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def run_delivery(now: datetime | None = None, *, batches: int = 1000) -> DeliveryRun:
    """Claim, send and mark due outbox rows until none are due (or ``batches`` ran).

    Every claim and every mark is its own transaction; nothing is sent inside one.
    """
    run = DeliveryRun()
    limit = current_app.config["NOTIFY_BATCH"]
    for _ in range(batches):
        moment = now or utcnow()
        token = secrets.token_hex(16)
        with atomic():
            ids = notifications.claim(moment, token, limit)
        if not ids:
            break
        run.claimed += len(ids)
        for message_id in ids:
            _deliver_one(message_id, token, now, run)
    return run


def _deliver_one(message_id: int, token: str, now: datetime | None, run: DeliveryRun) -> None:
    try:
        try:
            message = notifications.prepare(message_id)
        finally:
            db.session.rollback()  # no transaction stays open while sending
        notifications.send(message)
    except Exception as exc:  # noqa: BLE001 - one bad message never stops the others
        error = (
            exc
            if isinstance(exc, notifications.DeliveryError)
            else notifications.DeliveryError(type(exc).__name__)  # the class only: no data
        )
        with atomic():
            status = notifications.mark_failed(message_id, token, error, now or utcnow())
        run.errors[error.code] = run.errors.get(error.code, 0) + 1
        if status is None:
            run.lost += 1
        elif status == "failed":
            run.failed += 1
        else:
            run.retrying += 1
        return
    with atomic():
        done = notifications.mark_sent(message_id, token, now or utcnow())
    if done:
        run.sent += 1
    else:
        run.lost += 1


@click.group("notifications")
def notifications_group() -> None:
    """Notifications outside the app: deliver the outbox, write reminders (cron)."""


@notifications_group.command("deliver")
@click.option("--now", "now_text", default=None, help="Pretend it is this time (ISO 8601).")
@with_appcontext
def notifications_deliver(now_text: str | None) -> None:
    """Send the due messages of the outbox (e-mail, group robots); retry failures later.

    Safe to run several at once: each message is claimed by one run.
    """
    set_origin("cli")
    now = parse_now(now_text) if now_text else None
    run = run_delivery(now)
    with atomic():
        counts = notifications.status_counts()
    errors = ", ".join(f"{code} x{n}" for code, n in sorted(run.errors.items()))
    click.echo(
        f"Claimed {run.claimed}: sent {run.sent}, retrying {run.retrying},"
        f" failed {run.failed}, taken over {run.lost}." + (f" Errors: {errors}." if errors else "")
    )
    click.echo("Outbox: " + ", ".join(f"{status} {n}" for status, n in counts.items()) + ".")
    if counts["failed"]:
        click.echo(f"{counts['failed']} messages failed for good (see docs/notifications.md).")


@notifications_group.command("remind")
@click.option("--now", "now_text", default=None, help="Pretend it is this time (ISO 8601).")
@with_appcontext
def notifications_remind(now_text: str | None) -> None:
    """Write the reminders that are due (redemptions about to expire), once each."""
    set_origin("cli")
    now = parse_now(now_text)
    with atomic():
        done = reminders.remind_due(now)
    click.echo("Reminded: " + ", ".join(f"{name} {n}" for name, n in done.items()) + ".")
