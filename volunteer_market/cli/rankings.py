"""``rankings rebuild``: recompute the ranking rollups from the ledger."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..database import atomic
from ..services import rankings
from ..services.context import set_origin


@click.group("rankings")
def rankings_group() -> None:
    """Ranking rollups: rebuild them from the ledger."""


@rankings_group.command("rebuild")
@with_appcontext
def rankings_rebuild() -> None:
    """Recompute every ranking rollup from the ledger (holds the posting lock)."""
    set_origin("cli")
    with atomic():
        counts = rankings.rebuild()
    click.echo(
        f"Rebuilt ranking rollups: {counts['members']} member rows, {counts['teams']} team rows, "
        f"{counts['buckets']} score buckets."
    )
