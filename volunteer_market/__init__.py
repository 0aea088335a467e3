"""Volunteer Market (志愿微项目积分平台): the Flask application factory."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request, session
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_login.signals import session_protected
from werkzeug.middleware.proxy_fix import ProxyFix

from . import models  # noqa: F401  (registers every table)
from .config import build_config
from .database import configure_engine, engine_options, remove_session
from .extensions import babel, csrf, db, limiter, login_manager, migrate, smorest_api
from .http.json_body import LimitedJSONProvider
from .http.overhead import CookieSessionInterface, drop_idle_limiter_check
from .models import User
from .services import passwords
from .services.context import set_origin
from .zones import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: config, extensions, engine set-up, blueprints, errors, CLI."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = LimitedJSONProvider(app)
    app.session_interface = CookieSessionInterface()
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(build_config(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **engine_options(uri, app.config["SQLITE_BUSY_TIMEOUT_MS"]),
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
    }

    trust_proxies(app)
    register_extensions(app)
    register_request_hooks(app)
    register_blueprints(app)
    from .errors import register_error_handlers

    register_error_handlers(app)
    from .cli import register_cli

    register_cli(app)
    # After the blueprints: a blueprint-level limit would keep the limiter's check.
    drop_idle_limiter_check(app, limiter)
    return app


def trust_proxies(app: Flask) -> None:
    """Take the client's address and scheme from the ``TRUSTED_PROXY_HOPS`` proxies.

    With ``n`` hops, ``request.remote_addr`` is the ``n``-th address from the right of
    ``X-Forwarded-For`` (what the outermost trusted proxy saw) -- the key of every per-IP
    limit -- and ``X-Forwarded-Proto`` decides ``request.scheme``. With 0 the headers are
    ignored: a client cannot choose its address by sending them.
    """
    hops = int(app.config.get("TRUSTED_PROXY_HOPS", 0))
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    app.teardown_appcontext(lambda _exc: remove_session())  # runs before Flask-SQLAlchemy's
    with app.app_context():
        configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    migrate.init_app(
        app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")
    )
    passwords.configure(
        app.config["PASSWORD_HASH_MEMORY_KIB"], app.config["PASSWORD_HASH_TIME_COST"]
    )

    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    login_manager.login_view = "web_auth.login"
    login_manager.login_message = _l("请先登录。")
    login_manager.login_message_category = "info"
    session_protected.connect(end_copied_session, app)

    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        from .services.auth import load_session_user

        return load_session_user(session_id)

    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=lambda: DEFAULT_TIMEZONE)
    smorest_api.init_app(app)


def end_copied_session(_app: Flask, **_extra: Any) -> None:
    """Sign out a session cookie presented by another client than the one it was issued to.

    Flask-Login's ``session_protection = "strong"`` compares the session's identifier
    (a hash of the client's address and User-Agent, stored at login) with this
    request's, but for a *permanent* session -- every session here -- it only marks the
    session non-fresh and keeps the user signed in: a copied cookie worked from another
    browser. It sends ``session_protected`` on a mismatch; emptying the session before it
    reads ``_user_id`` leaves the request anonymous and the cookie is cleared.
    """
    if "_user_id" in session:
        log.info("session cookie from another client refused (identifier mismatch)")
        session.clear()


def select_locale() -> str:
    """Explicit choice (``?lang=``, then the session, then the user), then the header, then zh_CN."""
    languages = ["zh_CN", "en"]
    try:
        choice = request.args.get("lang") or session.get("lang")
    except RuntimeError:  # outside a request
        return "zh_CN"
    if choice in languages:
        return choice
    user = current_user if not request.path.startswith("/api/") else g.get("actor")
    if (
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "locale", None) in languages
    ):
        return user.locale
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"])
    if best in ("en",):
        return "en"
    return "zh_CN"


def register_request_hooks(app: Flask) -> None:
    @app.teardown_request
    def _forget_origin(_exc: BaseException | None = None) -> None:
        # The origin is a context variable of the thread: without this, work done in the
        # same thread after the request (a test, a CLI call) would be audited as coming
        # from the last request's address.
        set_origin(None)

    @app.before_request
    def _origin_and_session_timeouts() -> None:
        set_origin(request.remote_addr)
        if request.path.startswith("/api/") or request.path.startswith("/static/"):
            return
        lang = request.args.get("lang")
        if lang in ("zh_CN", "en"):
            session["lang"] = lang
        if not current_user.is_authenticated:
            return
        now = datetime.now(UTC).timestamp()
        login_at = session.get("_login_at", now)
        last_seen = session.get("_last_seen", now)
        idle = app.config["SESSION_IDLE_TIMEOUT"].total_seconds()
        absolute = app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()
        if now - last_seen > idle or now - login_at > absolute:
            logout_user()
            session.clear()
            return
        session["_last_seen"] = now

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        if app.config.get("SESSION_COOKIE_SECURE"):  # served over HTTPS: say so for a year
            resp.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        )
        return resp


def register_blueprints(app: Flask) -> None:
    from .api import register_api
    from .routing import IdConverter
    from .web import register_web

    app.url_map.converters["int"] = IdConverter  # before any rule uses it
    register_api(app)
    register_web(app)
