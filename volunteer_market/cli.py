"""Flask CLI commands: create-admin, doctor, demo. Commands call services, never views."""

from __future__ import annotations

import platform
import sys

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from .database import atomic
from .extensions import db
from .models import Role
from .services import users as user_service
from .services.context import set_origin
from .services.errors import DomainError


def register_cli(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(doctor)
    app.cli.add_command(demo)


@click.command("create-admin")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--display-name", default=None, help="Name shown in pages (default: USERNAME).")
@with_appcontext
def create_admin(username: str, password: str, display_name: str | None) -> None:
    """Create a user with the global admin role."""
    set_origin("cli")
    try:
        with atomic():
            user = user_service.create_user(
                None, username=username, password=password, display_name=display_name or username
            )
            user_service.grant_role(None, user, Role.ADMIN, None)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"Created admin {user.username} (id {user.id}).")


@click.command("doctor")
@with_appcontext
def doctor() -> None:
    """Print the engine, versions and settings in force."""
    engine = db.engine
    cfg = current_app.config
    click.echo(f"python            {platform.python_version()}")
    click.echo(f"engine            {engine.dialect.name} ({engine.driver})")
    click.echo(f"database          {engine.url.render_as_string(hide_password=True)}")
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            module = engine.dialect.dbapi
            click.echo(f"sqlite driver     {module.__name__}")
            click.echo(
                f"sqlite version    {conn.exec_driver_sql('select sqlite_version()').scalar()}"
            )
            for pragma in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous"):
                value = conn.exec_driver_sql(f"PRAGMA {pragma}").scalar()
                click.echo(f"  {pragma:<16}{value}")
        else:
            click.echo(f"server version    {conn.exec_driver_sql('show server_version').scalar()}")
            click.echo(
                f"isolation         {conn.exec_driver_sql('show transaction_isolation').scalar()}"
            )
        try:
            rev = conn.execute(sa.text("select version_num from alembic_version")).scalar()
        except sa.exc.DBAPIError:
            rev = None
        click.echo(f"schema revision   {rev or 'none (run: flask --app wsgi db upgrade)'}")
    click.echo(f"environment       {cfg['VM_ENV']}")
    click.echo(f"rate-limit store  {cfg['RATELIMIT_STORAGE_URI']}")
    click.echo(
        f"password hashing  argon2id m={cfg['PASSWORD_HASH_MEMORY_KIB']}KiB t={cfg['PASSWORD_HASH_TIME_COST']}"
    )
    click.echo(f"default locale    {cfg['BABEL_DEFAULT_LOCALE']}")


@click.group("demo")
def demo() -> None:
    """Load the Hanyang demo data and serve it."""


@demo.command("load")
@with_appcontext
def demo_load() -> None:
    """Load the demo data (once) and print the demo logins."""
    from .demo import DEMO_PASSWORD, load_demo

    set_origin("cli")
    logins = load_demo()
    _print_logins(logins, DEMO_PASSWORD)


@demo.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def demo_serve(host: str, port: int) -> None:
    """Migrate the database, load the demo data if missing, print logins and serve."""
    from flask_migrate import upgrade

    from .demo import DEMO_PASSWORD, load_demo

    set_origin("cli")
    upgrade()
    logins = load_demo()
    _print_logins(logins, DEMO_PASSWORD)
    click.echo(f"Serving on http://{host}:{port}/  (Ctrl+C to stop)")
    sys.stdout.flush()
    current_app.run(host=host, port=port, debug=False, use_reloader=False)


def _print_logins(logins: list[tuple[str, str, str]], password: str) -> None:
    click.echo(f"Demo logins (password for all: {password}):")
    for username, role, where in logins:
        click.echo(f"  {username:<16} {role:<12} {where}")
