"""HTML pages: same services and schemas as the API, CSRF on every form.

One blueprint per page family (``web_<family>``); the shared page helpers are in
:mod:`.forms` (form fields, query arguments, errors in the page's language),
:mod:`.messages` (the page text of service and schema messages), :mod:`.paging` and
:mod:`.labels` (display names of stored enum values).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..services import permissions
from ..services.wallet import points_summary
from . import (
    admin,
    appeals,
    audit,
    audit_labels,
    auth,
    dashboards,
    deliveries,
    evaluations,
    imports,
    integrity,
    labels,
    ledger,
    main,
    moderation,
    navigation,
    needs,
    notifications,
    projects,
    rankings,
    ratings,
    redemptions,
    registrations,
    rewards,
    sessions,
    settings,
)

#: Every page blueprint, in registration order.
BLUEPRINTS = (
    auth.bp,
    main.bp,
    admin.bp,
    ledger.bp,
    ratings.bp,  # ratings and settlement
    rankings.bp,
    evaluations.bp,  # annual report and annual evaluation
    rewards.bp,
    redemptions.bp,
    projects.bp,  # projects, their review, teams and menu orders
    needs.bp,
    deliveries.bp,
    notifications.bp,
    imports.bp,  # bulk import of residents and members
    registrations.bp,  # self-registration (到社区报到) and the secretary's queue
    appeals.bp,
    integrity.bp,
    moderation.bp,  # comment moderation and call-backs
    audit.bp,  # running a community: the audit log
    settings.bp,  # running a community: points policy, wallet expiry, ranking exposure
    dashboards.bp,  # running a community: the dashboard
    sessions.bp,  # sessions, sign-up, check-in, the calendar feed
)


def register_web(app: Flask) -> None:
    """Register the page blueprints, the label helpers and the page-wide hooks."""
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    labels.register(app)
    audit_labels.register(app)
    navigation.register(app)

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

    #: Pages reachable while a reset password must still be changed.
    before_change = {"web_main.profile", "web_auth.logout", "web_auth.login"}

    @app.before_request
    def _must_change_password() -> ResponseReturnValue | None:
        """Send someone whose password a secretary reset to the password form first."""
        if not (request.blueprint or "").startswith("web_") or request.endpoint in before_change:
            return None
        if current_user.is_authenticated and current_user.must_change_password:
            flash(_("您的密码已被社区重置，请先修改密码。"), "info")
            return redirect(url_for("web_main.profile"))
        return None

    @app.context_processor
    def _inject() -> dict[str, Any]:
        def may(action: str, target: Any = None) -> bool:
            user = current_user if current_user.is_authenticated else None
            return permissions.may(user, action, target)

        return {"may": may, "points_summary": points_summary, "get_locale": get_locale}
