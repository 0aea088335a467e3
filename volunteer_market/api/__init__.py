"""JSON API v1 (the contract: docs/API.md): parse with schemas, call services, dump."""

from __future__ import annotations

from flask import Flask

from ..extensions import smorest_api
from ..schemas.common import ProblemSchema


def register_api(app: Flask) -> None:
    """Register every API blueprint on the smorest Api (which serves openapi.json)."""
    from . import accounts, auth

    for blp in (auth.blp, accounts.me_blp, accounts.areas_blp, accounts.users_blp):
        smorest_api.register_blueprint(blp)
    from . import ledger

    smorest_api.register_blueprint(ledger.blp)
    from . import deliveries, needs, notifications, projects

    for blp in (projects.blp, needs.blp, deliveries.blp, notifications.blp):
        smorest_api.register_blueprint(blp)
    smorest_api.register_blueprint(notifications.channels_blp)
    smorest_api.register_blueprint(notifications.webhook_blp)
    from . import ratings  # ratings and settlement

    smorest_api.register_blueprint(ratings.blp)
    from . import rankings  # rankings

    smorest_api.register_blueprint(rankings.blp)
    from . import rewards  # rewards and redemption

    for blp in (rewards.rewards_blp, rewards.redemptions_blp, rewards.wallet_blp):
        smorest_api.register_blueprint(blp)
    from . import imports, registrations  # onboarding: bulk import, self-registration

    smorest_api.register_blueprint(imports.blp)
    smorest_api.register_blueprint(registrations.blp)
    from . import evaluations  # annual report and annual evaluation

    smorest_api.register_blueprint(evaluations.blp)
    from . import appeals, integrity  # appeals and integrity

    smorest_api.register_blueprint(appeals.blp)
    smorest_api.register_blueprint(integrity.blp)
    from . import moderation  # comment moderation and call-backs

    smorest_api.register_blueprint(moderation.blp)

    from . import audit, dashboards, points_policy  # running a community

    smorest_api.register_blueprint(audit.blp)
    smorest_api.register_blueprint(points_policy.blp)
    smorest_api.register_blueprint(dashboards.blp)
    from . import sessions  # sessions, sign-up, attendance, calendars

    for blp in (sessions.project_sessions_blp, sessions.blp, sessions.calendar_blp):
        smorest_api.register_blueprint(blp)
    if "Problem" not in smorest_api.spec.components.schemas:  # else the error responses did
        smorest_api.spec.components.schema("Problem", schema=ProblemSchema)
