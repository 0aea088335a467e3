"""``wallet expire``: post wallet expiry by the points policy (cron)."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import with_appcontext

from ..database import atomic
from ..extensions import db
from ..models import utcnow
from ..services import ledger as ledger_service
from ..services import wallet_expiry
from ..services.context import set_origin
from ..zones import local_today


@click.group("wallet")
def wallet_group() -> None:
    """Wallet points (积分): expiry by the points policy (run from cron)."""


@wallet_group.command("expire")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="Local date YYYY-MM-DD (default: today in the default zone, China Standard Time).",
)
@with_appcontext
def wallet_expire(as_of: str | None) -> None:
    """Post expiry transactions for wallet points past their policy deadline.

    One transaction per member; idempotent (one expiry per member and year).
    """
    set_origin("cli")
    if as_of:
        try:
            day = date.fromisoformat(as_of)
        except ValueError as exc:
            raise click.BadParameter("a date YYYY-MM-DD", param_hint="--as-of") from exc
    else:
        day = local_today(utcnow())
    members = wallet_expiry.candidates()
    db.session.rollback()
    posted = points = 0
    for member_id in members:
        with atomic():
            tx = wallet_expiry.expire_member(member_id, day)
            if tx is not None:
                posted += 1
                # an expiry takes points from the wallet: its member delta is negative
                points -= ledger_service.member_delta(tx)
    click.echo(
        f"As of {day.isoformat()}: expired {points} points of {posted} members"
        f" (points earned in {day.year - 2} or earlier)."
    )
