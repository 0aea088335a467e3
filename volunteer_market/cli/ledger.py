"""``ledger verify``, ``ledger anchor`` and ``ledger purge-idempotency-keys``."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from flask.cli import with_appcontext

from ..database import atomic
from ..extensions import db
from ..services import idempotency
from ..services import verify as verifier


@click.group("ledger")
def ledger_group() -> None:
    """The points ledger: verify its invariants, purge old idempotency keys."""


@ledger_group.command("verify")
@click.option(
    "--all", "all_checks", is_flag=True, help="Report the first violation of every check."
)
@with_appcontext
def ledger_verify(all_checks: bool) -> None:
    """Check every ledger invariant and the hash chain; exit 1 on the first violation."""
    found = verifier.verify_all() if all_checks else [v for v in [verifier.verify()] if v]
    counts = verifier.stats()
    db.session.rollback()
    if found:
        for violation in found:
            click.echo(f"VIOLATION {violation}")
        click.echo(
            f"checked {counts['transactions']} transactions, {counts['entries']} entries, "
            f"{counts['accounts']} accounts"
        )
        sys.exit(1)
    click.echo(
        f"OK: {counts['transactions']} transactions, {counts['entries']} entries, "
        f"{counts['accounts']} accounts; checks: {', '.join(verifier.check_names())}"
    )


@ledger_group.command("anchor")
@with_appcontext
def ledger_anchor() -> None:
    """Anchor every chain head in the anchor chain (run it from cron)."""
    from ..services.ledger.anchors import write_anchor

    with atomic():
        anchor = write_anchor()
        anchor_id, digest = anchor.id, anchor.hash
    click.echo(f"Anchor {anchor_id}: {digest}")


@ledger_group.command("purge-idempotency-keys")
@click.option("--hours", default=48, show_default=True, type=click.IntRange(min=24))
@with_appcontext
def ledger_purge_keys(hours: int) -> None:
    """Delete Idempotency-Key records older than HOURS (never younger than 24 h)."""
    with atomic():
        n = idempotency.purge_expired(timedelta(hours=hours))
    click.echo(f"Purged {n} idempotency keys older than {hours} h.")
