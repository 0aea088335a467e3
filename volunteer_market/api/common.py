"""API plumbing: bearer-token authentication, pagination, idempotency helpers."""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import g, request
from flask_smorest import Blueprint

from ..extensions import csrf, db
from ..http.json_body import LimitedParser
from ..http.throttles import check_api_rate
from ..models import User
from ..services import auth as auth_service
from ..services.errors import AuthenticationFailed, Forbidden

F = TypeVar("F", bound=Callable[..., Any])

#: Endpoints reachable without a token (everything else under /api/v1 needs one).
PUBLIC_ENDPOINTS: set[str] = set()


def public(fn: F) -> F:
    """Mark an API view as reachable without a bearer token."""
    fn._public = True  # type: ignore[attr-defined]
    return fn


def before_password_change(fn: F) -> F:
    """Mark an API view as reachable while the caller must still change a reset password
    (``/me``, the password change, revoking the token); every other view answers 403."""
    fn._before_password_change = True  # type: ignore[attr-defined]
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
        check_api_rate(None)
        return
    user = auth_service.user_for_token(bearer_token() or "")
    check_api_rate(user.id if user is not None else None)  # API_RATE_LIMIT (429)
    if user is None:
        raise AuthenticationFailed("A valid bearer token is required.")
    if user.must_change_password and not getattr(view, "_before_password_change", False):
        raise Forbidden("Change your password first (POST /api/v1/me/password).")
    g.actor = user


def _view_function() -> Any:
    from flask import current_app

    return current_app.view_functions.get(request.endpoint or "")


# --- OpenAPI: the error responses of each operation -------------------------------------

#: Image types the upload endpoints accept and the image endpoints serve.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")

#: ``@blp.doc(**IMAGE_UPLOAD_DOC)`` for a ``PUT .../image`` view reading ``request.files``.
IMAGE_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PNG, JPEG or WebP, at most 2 MB.",
                        }
                    },
                }
            }
        },
    }
}

#: ``@blp.doc(**IMAGE_RESPONSE_DOC)`` for a ``GET .../image`` view sending the file.
IMAGE_RESPONSE_DOC: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The image.",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
        }
    }
}


def problem_response(status: int) -> str:
    """Return the name of the problem+json response component for ``status`` (e.g.
    ``"NOT_FOUND"``), for ``@blp.alt_response(status, response=problem_response(status))``."""
    return http.HTTPStatus(status).name


def problem_statuses(*, method: str, rule: str, public: bool, doc: dict[str, Any]) -> set[int]:
    """Return the error statuses an API operation can answer (API.md "Errors").

    401 and 403 unless the view is public; 404 with a path parameter (unknown ids and
    objects the caller may not see); 400 (malformed JSON), 413 (too large) and 422 with a
    request body; 422 with query parameters; 503 (database busy or unreachable, with
    Retry-After) for every operation and 409 (state, balance or stock conflict; a unique
    constraint) for a signed-in caller's writes; 429 (``API_RATE_LIMIT`` used up, with
    Retry-After) for every operation.
    Views document any other status with ``@blp.alt_response(status,
    response=problem_response(status))`` (e.g. 429 on the throttled public endpoints).
    """
    statuses: set[int] = set()
    if not public:
        statuses |= {401, 403}
    if "<" in rule:
        statuses.add(404)
    if "requestBody" in doc:
        statuses |= {413, 422}
        if "application/json" in doc["requestBody"].get("content", {}):
            statuses.add(400)
    if any(isinstance(p, dict) and p.get("in") == "query" for p in doc.get("parameters", [])):
        statuses.add(422)
    statuses.add(503)  # any operation may find the database busy or unreachable
    statuses.add(429)  # any operation counts against API_RATE_LIMIT
    if method.lower() != "get" and not public:
        statuses.add(409)
    return statuses


class ApiBlueprint(Blueprint):
    """A flask-smorest blueprint whose operations document their problem+json errors
    (see :func:`problem_statuses`); the app has no catch-all ``default`` response.
    Bodies are read with the limits of :mod:`volunteer_market.http.json_body`."""

    ARGUMENTS_PARSER = LimitedParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_problem_doc)

    def add_url_rule(  # type: ignore[no-untyped-def]
        self, rule, endpoint=None, view_func=None, provide_automatic_options=None, **options
    ):
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)
        context = {"rule": rule, "public": bool(getattr(view_func, "_public", False))}
        for method, info in self._docs[self._endpoints[-1]].items():
            if method != "parameters":
                info["problem_context"] = context

    @staticmethod
    def _prepare_problem_doc(  # type: ignore[no-untyped-def]
        doc, doc_info, *, method, **kwargs
    ):
        context = doc_info.get("problem_context")
        if context is None:
            return doc
        manual = doc_info.get("manual_doc", {})
        merged = {**doc, **{k: v for k, v in manual.items() if k == "requestBody"}}
        responses = doc.setdefault("responses", {})
        for status in problem_statuses(method=method, doc=merged, **context):
            responses.setdefault(str(status), problem_response(status))
        doc["responses"] = dict(sorted(responses.items(), key=lambda item: str(item[0])))
        if context["public"]:
            doc["security"] = []  # no bearer token needed (the spec's default asks for one)
        return doc


def make_blueprint(name: str, url_prefix: str, description: str = "") -> Blueprint:
    """Return an API blueprint that authenticates every request by bearer token.

    API blueprints are exempt from CSRF: they accept no cookies, only tokens. Their
    operations document their error responses (:class:`ApiBlueprint`).
    """
    blp = ApiBlueprint(name, __name__, url_prefix=f"/api/v1{url_prefix}", description=description)
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
