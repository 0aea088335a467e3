"""HTML pages: same services and schemas as the API, CSRF on every form."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from flask_babel import get_locale
from flask_login import current_user
from marshmallow import ValidationError

from ..services.wallet import points_summary


def form_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Return marshmallow errors as ``{field: [messages]}`` for templates."""
    messages: Any = exc.messages
    if isinstance(messages, dict):
        return {str(k): (v if isinstance(v, list) else [str(v)]) for k, v in messages.items()}
    return {"_schema": [str(messages)]}


def form_data(form: Any, fields: list[str]) -> dict[str, Any]:
    """Return the named fields of a submitted form, dropping empty optional strings."""
    out: dict[str, Any] = {}
    for name in fields:
        value = form.get(name)
        if value is None:
            continue
        out[name] = value if value != "" else None
    return out


def register_web(app: Flask) -> None:
    from . import admin, auth, main

    app.register_blueprint(auth.bp)
    app.register_blueprint(main.bp)
    app.register_blueprint(admin.bp)
    from . import labels

    labels.register(app)
    from . import ledger

    app.register_blueprint(ledger.bp)
    from . import ratings  # ratings and settlement

    app.register_blueprint(ratings.bp)
    from . import rankings  # rankings

    app.register_blueprint(rankings.bp)
    from . import rewards  # rewards and redemption

    app.register_blueprint(rewards.bp)
    from . import marketplace  # projects, teams, needs, deliveries, notifications

    app.register_blueprint(marketplace.bp)

    @app.before_request
    def _refuse_nul() -> None:
        """Refuse (400) a page request whose form or query string holds a NUL character.

        Many page forms are read field by field, not through a ``StrictSchema`` (which
        refuses NUL for the API): PostgreSQL cannot store or compare NUL in text, so such
        a value would be a 500 there, and SQLite would store it. No person types one.
        """
        if not (request.blueprint or "").startswith("web_"):
            return
        for key, values in request.values.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                abort(400)

    @app.context_processor
    def _inject() -> dict[str, Any]:
        from ..services import permissions

        def may(action: str, target: Any = None) -> bool:
            user = current_user if current_user.is_authenticated else None
            return permissions.may(user, action, target)

        return {"may": may, "points_summary": points_summary, "get_locale": get_locale}
