"""API plumbing: bearer-token authentication, pagination, idempotency helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import g, request
from flask_smorest import Blueprint

from ..extensions import csrf, db
from ..models import User
from ..services import auth as auth_service
from ..services.errors import AuthenticationFailed

F = TypeVar("F", bound=Callable[..., Any])

#: Endpoints reachable without a token (everything else under /api/v1 needs one).
PUBLIC_ENDPOINTS: set[str] = set()


def public(fn: F) -> F:
    """Mark an API view as reachable without a bearer token."""
    fn._public = True  # type: ignore[attr-defined]
    return fn


def bearer_token() -> str | None:
    """Return the raw bearer token of this request, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _authenticate() -> None:
    view = request.url_rule and request.endpoint and _view_function()
    if view is not None and getattr(view, "_public", False):
        g.actor = None
        return
    user = auth_service.user_for_token(bearer_token() or "")
    if user is None:
        raise AuthenticationFailed("A valid bearer token is required.")
    g.actor = user


def _view_function() -> Any:
    from flask import current_app

    return current_app.view_functions.get(request.endpoint or "")


def make_blueprint(name: str, url_prefix: str, description: str = "") -> Blueprint:
    """Return an API blueprint that authenticates every request by bearer token.

    API blueprints are exempt from CSRF: they accept no cookies, only tokens.
    """
    blp = Blueprint(name, __name__, url_prefix=f"/api/v1{url_prefix}", description=description)
    blp.before_request(_authenticate)
    csrf.exempt(blp)
    return blp


def actor() -> User:
    """Return the user authenticated for this API request."""
    user: User | None = g.get("actor")
    if user is None:
        raise AuthenticationFailed("A valid bearer token is required.")
    return user


def paginate(
    stmt: sa.Select[Any], page: int, per_page: int, *, scalars: bool = True
) -> dict[str, Any]:
    """Run ``stmt`` for one page and count the total; return ``{items, page, per_page, total}``."""
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    ).scalar_one()
    paged = stmt.limit(per_page).offset((page - 1) * per_page)
    result = db.session.execute(paged)
    items = list(result.scalars()) if scalars else list(result)
    return {"items": items, "page": page, "per_page": per_page, "total": total}
