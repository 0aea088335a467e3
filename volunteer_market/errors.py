"""One app-level set of error handlers.

Under ``/api/`` every error is ``application/problem+json``
(``{type, title, status, detail}`` plus ``errors`` for field errors); elsewhere an
HTML page. Registered on the app, not on blueprints, so unmatched URLs are covered.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .services.errors import DomainError

log = logging.getLogger(__name__)


def wants_problem_json() -> bool:
    """Return True when this request is an API request."""
    return request.path.startswith("/api/")


def _flatten_webargs(messages: Any) -> dict[str, list[str]]:
    """Turn webargs' ``{location: {field: [msgs]}}`` into ``{field: [msgs]}``."""
    out: dict[str, list[str]] = {}
    if not isinstance(messages, dict):
        return {"_schema": [str(messages)]}
    for _location, fields in messages.items():
        if not isinstance(fields, dict):
            out.setdefault("_schema", []).extend(
                fields if isinstance(fields, list) else [str(fields)]
            )
            continue
        for name, msgs in fields.items():
            if isinstance(msgs, dict):  # nested: {index or subfield: [...]}
                flat = _flatten_nested(msgs)
                for sub, sub_msgs in flat.items():
                    out.setdefault(f"{name}.{sub}", []).extend(sub_msgs)
            else:
                out.setdefault(str(name), []).extend(
                    msgs if isinstance(msgs, list) else [str(msgs)]
                )
    return out


def _flatten_nested(messages: dict[Any, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        if isinstance(value, dict):
            for sub, msgs in _flatten_nested(value).items():
                out[f"{key}.{sub}"] = msgs
        else:
            out[str(key)] = value if isinstance(value, list) else [str(value)]
    return out


def problem(
    status: int, title: str, detail: str, errors: dict[str, list[str]] | None = None, **extra: Any
) -> Response:
    """Return a problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = "application/problem+json"
    return resp


def _html(status: int, title: str, detail: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, detail=detail), status


def handle_domain_error(exc: DomainError) -> Any:
    if wants_problem_json():
        return problem(exc.status, exc.title, exc.detail, exc.errors)
    return _html(exc.status, _(exc.title), _(exc.detail))


_HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
}


def handle_http_exception(exc: HTTPException) -> Any:
    status = exc.code or 500
    title = _HTTP_TITLES.get(status, exc.name)
    detail = exc.description or title
    errors = None
    data = getattr(exc, "data", None) or {}
    if status == 422 and "messages" in data:
        errors = _flatten_webargs(data["messages"])
        detail = "The request has invalid fields."
    elif status == 400 and "messages" in data:
        detail = "The request body is not valid JSON."
    headers = dict(exc.get_headers()) if status in (401, 405, 429) else {}
    if wants_problem_json():
        resp = problem(status, title, detail, errors)
        for name in ("Retry-After", "Allow", "WWW-Authenticate"):
            if name in headers:
                resp.headers[name] = headers[name]
        if status == 401 and "WWW-Authenticate" not in resp.headers:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp
    body, code = _html(status, _(title), _(detail) if detail == title else detail)
    resp = Response(body, status=code, mimetype="text/html")
    for name in ("Retry-After", "Allow"):
        if name in headers:
            resp.headers[name] = headers[name]
    return resp


def handle_csrf_error(exc: CSRFError) -> Any:
    if wants_problem_json():
        return problem(400, "Bad request", "CSRF token missing or invalid.")
    return _html(400, _("Bad request"), _("表单已过期或无效，请刷新页面后重试。"))


def handle_unexpected(exc: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if wants_problem_json():
        return problem(500, "Internal server error", "Something went wrong on our side.")
    return _html(500, _("Internal server error"), _("服务器出错了，请稍后再试。"))


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app (after flask-smorest, to replace its own)."""
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_unexpected)
