"""The Flask CLI (``flask --app wsgi ...``): one module per command group.

``accounts``     ``create-admin``
``demo``         ``demo load``, ``demo serve``
``operations``   ``doctor``, ``backup``, ``restore``
``ledger``       ``ledger verify``, ``ledger purge-idempotency-keys``
``rankings``     ``rankings rebuild``
``redemptions``  ``redemptions expire`` (cron)
``wallet``       ``wallet expire`` (cron)
``imports``      ``import residents|members FILE --community ID``, ``import run-pending``
``notifications`` ``notifications deliver``, ``notifications remind`` (cron)

Commands parse their options, open ``database.atomic()`` and call services; they never
import views. Domain errors become ``click.ClickException`` (exit 1 with the message).
"""

from __future__ import annotations

from flask import Flask

from .accounts import create_admin
from .demo import demo_group
from .imports import import_group
from .ledger import ledger_group
from .notifications import notifications_group
from .operations import backup_command, doctor, restore_command
from .rankings import rankings_group
from .redemptions import redemptions_group
from .wallet import wallet_group


def register_cli(app: Flask) -> None:
    """Add every command group to ``app.cli``."""
    for command in (
        create_admin,
        doctor,
        demo_group,
        backup_command,
        restore_command,
        ledger_group,
        rankings_group,
        redemptions_group,
        wallet_group,
        import_group,
        notifications_group,
    ):
        app.cli.add_command(command)
