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
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(ledger_group)
    app.cli.add_command(rankings_group)
    app.cli.add_command(redemptions_group)
    app.cli.add_command(wallet_group)


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
    # app.run() refuses to start inside the flask CLI; serve with werkzeug directly.
    from werkzeug.serving import run_simple

    run_simple(host, port, current_app._get_current_object(), threaded=True)


def _print_logins(logins: list[tuple[str, str, str]], password: str) -> None:
    click.echo(f"Demo logins (password for all: {password}):")
    for username, role, where in logins:
        click.echo(f"  {username:<16} {role:<12} {where}")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(path: str) -> None:
    """Write an online, consistent backup of the database to PATH."""
    from pathlib import Path

    from .backup import BackupError, backup

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
    from pathlib import Path

    from .backup import BackupError, restore

    if not yes:
        click.confirm("This replaces every row in the database. Continue?", abort=True)
    try:
        restore(db.engine, Path(path))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Restored from {path}")


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
    from .services import verify as verifier

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


@ledger_group.command("purge-idempotency-keys")
@click.option("--hours", default=48, show_default=True, type=click.IntRange(min=24))
@with_appcontext
def ledger_purge_keys(hours: int) -> None:
    """Delete Idempotency-Key records older than HOURS (never younger than 24 h)."""
    from datetime import timedelta

    from .services import idempotency

    with atomic():
        n = idempotency.purge_expired(timedelta(hours=hours))
    click.echo(f"Purged {n} idempotency keys older than {hours} h.")


@click.group("rankings")
def rankings_group() -> None:
    """Ranking rollups: rebuild them from the ledger."""


@rankings_group.command("rebuild")
@with_appcontext
def rankings_rebuild() -> None:
    """Recompute every ranking rollup from the ledger (holds the posting lock)."""
    from .services import rankings

    set_origin("cli")
    with atomic():
        counts = rankings.rebuild()
    click.echo(
        f"Rebuilt ranking rollups: {counts['members']} member rows, {counts['teams']} team rows, "
        f"{counts['buckets']} score buckets."
    )


# --- rewards and redemption -------------------------------------------------


def _parse_now(value: str | None):  # type: ignore[no-untyped-def]
    from datetime import datetime

    from .models import utcnow

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
    from .services import redemptions

    set_origin("cli")
    now = _parse_now(now_text)
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
    from datetime import date

    from .models import utcnow
    from .services import wallet_expiry
    from .zones import local_today

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
                points += -ledger_amount(tx)
    click.echo(
        f"As of {day.isoformat()}: expired {points} points of {posted} members"
        f" (points earned in {day.year - 2} or earlier)."
    )


def ledger_amount(tx) -> int:  # type: ignore[no-untyped-def]
    """Return the wallet change of an expiry transaction (negative)."""
    from .services import ledger

    return ledger.member_delta(tx)
