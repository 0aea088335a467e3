"""``redemptions expire``: return the points and stock of unfulfilled holds (cron)."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from ..database import atomic
from ..extensions import db
from ..models import utcnow
from ..services import redemptions
from ..services.context import set_origin


def parse_now(value: str | None) -> datetime:
    """Return ``value`` as an aware time (ISO 8601 with an offset), or now when empty.

    :raises click.BadParameter: not ISO 8601, or without an offset.
    """
    if not value:
        return utcnow()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("an ISO 8601 time with an offset") from exc
    if parsed.tzinfo is None:
        raise click.BadParameter("an ISO 8601 time with an offset, e.g. 2026-11-30T08:00+08:00")
    return parsed


@click.group("redemptions")
def redemptions_group() -> None:
    """Redemptions (积分兑换): expire unfulfilled holds (run from cron)."""


@redemptions_group.command("expire")
@click.option("--now", "now_text", default=None, help="Pretend it is this time (ISO 8601).")
@click.option(
    "--remind/--no-remind",
    default=True,
    show_default=True,
    help="Also remind members whose holds expire within two days.",
)
@with_appcontext
def redemptions_expire(now_text: str | None, remind: bool) -> None:
    """Expire held redemptions past their pickup deadline: points and stock return.

    One transaction per redemption; safe to run twice at once (each is expired once).
    """
    set_origin("cli")
    now = parse_now(now_text)
    due = redemptions.due_holds(now)
    db.session.rollback()
    expired = 0
    for redemption_id in due:
        with atomic():
            done = redemptions.expire_hold(redemption_id, now)
        expired += int(done)
    reminded = 0
    if remind:
        with atomic():
            reminded = redemptions.remind_expiring(now)
    click.echo(
        f"Expired {expired} of {len(due)} due redemptions"
        f" ({len(due) - expired} closed meanwhile); reminded {reminded}."
    )
