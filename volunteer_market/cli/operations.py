"""``doctor``, ``backup`` and ``restore``: running the installation."""

from __future__ import annotations

import platform
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from ..backup import BackupError, backup, restore
from ..extensions import db


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
            click.echo(f"sqlite driver     {getattr(module, '__name__', 'unknown')}")
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


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(path: str) -> None:
    """Write an online, consistent backup of the database to PATH."""
    try:
        out = backup(db.engine, Path(path))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Backup written to {out}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_command(path: str, yes: bool) -> None:
    """Replace the database with the backup at PATH (stop the app first)."""
    if not yes:
        click.confirm("This replaces every row in the database. Continue?", abort=True)
    try:
        restore(db.engine, Path(path))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Restored from {path}")
