"""POST/DELETE /api/v1/auth/token."""

from __future__ import annotations

from flask import current_app

from ..database import atomic
from ..http.throttles import login_throttle, mark_login_failed
from ..schemas.accounts import TokenIn, TokenOut
from ..services import auth as auth_service
from ..services.errors import AuthenticationFailed
from ..services.users import present_user
from .common import (
    bearer_token,
    before_password_change,
    make_blueprint,
    problem_response,
    public,
)

blp = make_blueprint("api_auth", "/auth", "Bearer tokens")


@blp.route("/token", methods=["POST"])
@public
@login_throttle
@blp.arguments(TokenIn)
@blp.response(201, TokenOut)
@blp.alt_response(401, response=problem_response(401))  # wrong username or password
@blp.alt_response(429, response=problem_response(429))  # too many failed attempts
def create_token(data: dict) -> dict:
    """Exchange a username (or phone number) and password for a bearer token."""
    try:
        user = auth_service.authenticate(data["username"], data["password"])
    except AuthenticationFailed:
        mark_login_failed()
        raise
    with atomic():
        raw, token = auth_service.issue_token(user, current_app.config["API_TOKEN_TTL"])
    return {"token": raw, "expires_at": token.expires_at, "user": present_user(user, user)}


@blp.route("/token", methods=["DELETE"])
@before_password_change
@blp.response(204)
def revoke_token() -> None:
    """Revoke the token used for this request."""
    with atomic():
        auth_service.revoke_token(bearer_token() or "")
