"""``create-admin``: the first administrator of a fresh installation."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..database import atomic
from ..models import Role
from ..services import users as user_service
from ..services.context import set_origin
from ..services.errors import DomainError


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
