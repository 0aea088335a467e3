"""One app-level set of error handlers.

Under ``/api/`` every error is ``application/problem+json``
(``{type, title, status, detail}`` plus ``errors`` for field errors); elsewhere an
HTML page. Registered on the app, not on blueprints, so unmatched URLs are covered.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from .database import unique_violation
from .extensions import limiter
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
        # Field names as strings: a nameless multipart part is a ``None`` key in
        # ``request.form``, which the JSON encoder (sorting keys) cannot order.
        body["errors"] = {"" if k is None else str(k): v for k, v in errors.items()}
    body.update(extra)
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = "application/problem+json"
    return resp


#: Title and explanation of the HTML error page for each status, in the page language.
#: (The API keeps its English problem+json texts; services' English details are not
#: shown on pages.)
_PAGE_TEXT: dict[int, tuple[Any, Any]] = {
    400: (_l("请求有误"), _l("请求无法处理，请检查后重试。")),
    401: (_l("需要登录"), _l("请先登录。")),
    403: (_l("没有权限"), _l("您没有权限进行此操作。")),
    404: (_l("页面不存在"), _l("您要找的页面不存在，或您无权查看。")),
    405: (_l("不支持的请求方式"), _l("此页面不支持这种请求方式。")),
    409: (_l("操作冲突"), _l("操作与当前状态冲突，请刷新后重试。")),
    413: (_l("内容过大"), _l("提交的内容过大。")),
    415: (_l("不支持的内容类型"), _l("不支持提交的内容类型。")),
    422: (_l("提交的内容有误"), _l("请检查填写的内容后重试。")),
    429: (_l("尝试次数过多"), _l("尝试次数过多，请稍后再试。")),
    500: (_l("服务器出错了"), _l("服务器出错了，请稍后再试。")),
}


def _page_text(status: int) -> tuple[str, str]:
    title, detail = _PAGE_TEXT.get(status) or _PAGE_TEXT[500 if status >= 500 else 400]
    return str(title), str(detail)


def _html(status: int, title: str | None = None, detail: str | None = None) -> tuple[str, int]:
    default_title, default_detail = _page_text(status)
    return render_template(
        "error.html", status=status, title=title or default_title, detail=detail or default_detail
    ), status


def handle_domain_error(exc: DomainError) -> Any:
    retry_after = getattr(exc, "retry_after", None)  # TooManyAttempts
    if wants_problem_json():
        resp = problem(exc.status, exc.title, exc.detail, exc.errors)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
    else:
        body, code = _html(exc.status)
        resp = Response(body, status=code, mimetype="text/html")
    if retry_after is not None:
        resp.headers["Retry-After"] = str(int(retry_after))
    return resp


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
    if status == 429 and "Retry-After" not in headers:  # X-RateLimit-* headers are off
        headers["Retry-After"] = str(_retry_after())
    if wants_problem_json():
        resp = problem(status, title, detail, errors)
        for name in ("Retry-After", "Allow", "WWW-Authenticate"):
            if name in headers:
                resp.headers[name] = headers[name]
        if status == 401 and "WWW-Authenticate" not in resp.headers:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp
    body, code = _html(status)
    resp = Response(body, status=code, mimetype="text/html")
    for name in ("Retry-After", "Allow"):
        if name in headers:
            resp.headers[name] = headers[name]
    return resp


def _retry_after() -> int:
    """Seconds until the limit that refused this request lets one through again."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()) + 1)


def handle_csrf_error(exc: CSRFError) -> Any:
    if wants_problem_json():
        return problem(400, "Bad request", "CSRF token missing or invalid.")
    return _html(400, detail=_("表单已过期或无效，请刷新页面后重试。"))


def handle_unexpected(exc: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if wants_problem_json():
        return problem(500, "Internal server error", "Something went wrong on our side.")
    return _html(500)


#: Driver messages of a database that is busy: SQLite's lock wait past the busy timeout,
#: PostgreSQL's lock and serialization timeouts.
_BUSY = ("database is locked", "lock timeout", "deadlock detected")
#: ... and of one that cannot be reached or dropped the connection (PostgreSQL restarted,
#: its backends terminated, connections refused; a SQLite file that cannot be opened).
_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "connection to server",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection already closed",
    "the connection is lost",
    "consuming input failed",
    "no connection to the server",
    "server conn crashed",
    "ssl syscall error",
    "unable to open database file",
)


def database_unavailable(exc: DBAPIError) -> bool:
    """Return True if ``exc`` says the database is busy or out of reach (a temporary
    condition), not that the statement is wrong."""
    if exc.connection_invalidated:
        return True
    message = str(getattr(exc, "orig", exc)).lower()
    return any(s in message for s in _BUSY + _UNREACHABLE)


def handle_operational_error(exc: DBAPIError) -> Any:
    """A database that is busy or unreachable is a temporary condition: 503 with
    Retry-After, nothing written (the transaction was rolled back or never began). The
    pool checks a connection before lending it (``pool_pre_ping``), so the requests
    after a lost connection get a new one. Anything else is a 500."""
    if not database_unavailable(exc):
        return handle_unexpected(exc)
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.path, type(exc.orig).__name__
    )
    if wants_problem_json():
        resp = problem(503, "Service unavailable", "The database is busy; please retry.")
    else:
        try:
            body, _code = _html(503, _("服务繁忙"), _("系统繁忙，请稍后重试。"))
        except Exception:  # noqa: BLE001  (the page itself needed the database)
            body = "503 Service unavailable"
        resp = Response(body, status=503, mimetype="text/html")
    resp.headers["Retry-After"] = "2"
    return resp


def handle_integrity_error(exc: IntegrityError) -> Any:
    """A unique constraint that refused a write is a conflict (409), as the service's
    own check would have said had the other request not committed in between (two
    requests creating one username, granting one role). Nothing was written (the
    transaction was rolled back). Only the constraint's name is logged: the error's
    text holds the row's key. Any other integrity error is a 500."""
    constraint = unique_violation(exc)
    if constraint is None:
        return handle_unexpected(exc)
    log.info("unique constraint %s refused %s %s", constraint, request.method, request.path)
    if wants_problem_json():
        return problem(409, "Conflict", "This already exists (another request made it first).")
    return _html(409)


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app (after flask-smorest, to replace its own)."""
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(OperationalError, handle_operational_error)
    app.register_error_handler(InterfaceError, handle_operational_error)
    app.register_error_handler(IntegrityError, handle_integrity_error)
