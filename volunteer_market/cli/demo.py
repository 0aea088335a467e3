"""``demo load`` and ``demo serve``: the Hanyang demo data (see ``volunteer_market.demo``)."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from ..demo import DEMO_PASSWORD, load_demo
from ..services.context import set_origin


@click.group("demo")
def demo_group() -> None:
    """Load the Hanyang demo data and serve it."""


@demo_group.command("load")
@with_appcontext
def demo_load() -> None:
    """Load the demo data (once) and print the demo logins."""
    set_origin("cli")
    logins = load_demo()
    _print_logins(logins, DEMO_PASSWORD)


@demo_group.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def demo_serve(host: str, port: int) -> None:
    """Migrate the database, load the demo data if missing, print logins and serve."""
    set_origin("cli")
    upgrade()
    logins = load_demo()
    _print_logins(logins, DEMO_PASSWORD)
    click.echo(f"Serving on http://{host}:{port}/  (Ctrl+C to stop)")
    sys.stdout.flush()
    # app.run() refuses to start inside the flask CLI; serve with werkzeug directly.
    # current_app is a werkzeug LocalProxy that Flask types as Flask itself.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_simple(host, port, app, threaded=True)


def _print_logins(logins: list[tuple[str, str, str]], password: str) -> None:
    click.echo(f"Demo logins (password for all: {password}):")
    for username, role, where in logins:
        click.echo(f"  {username:<16} {role:<12} {where}")
