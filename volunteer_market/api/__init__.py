"""JSON API v1 (see ../shared/docs/API.md): parse with schemas, call services, dump."""

from __future__ import annotations

from flask import Flask

from ..extensions import smorest_api
from ..schemas.common import ProblemSchema


def register_api(app: Flask) -> None:
    """Register every API blueprint on the smorest Api (which serves openapi.json)."""
    from . import accounts, auth

    for blp in (auth.blp, accounts.me_blp, accounts.areas_blp, accounts.users_blp):
        smorest_api.register_blueprint(blp)
    smorest_api.spec.components.schema("Problem", schema=ProblemSchema)
