"""Configuration: defaults, overridden by the environment.

Settings read from the environment (see README):

``DATABASE_URL``            default ``sqlite:///<instance>/volunteer_market.db``
``SECRET_KEY``              required when ``VM_ENV=production``; in development a
                            random key is generated once and kept in ``instance/secret_key``
``RATELIMIT_STORAGE_URI``   default ``memory://``; use ``redis://...`` with several workers
                            (gunicorn.conf.py refuses to start production with several
                            workers and ``memory://``)
``VM_ENV``                  ``development`` (default) or ``production`` (set by gunicorn.conf.py)
``PASSWORD_HASH_MEMORY_KIB`` / ``PASSWORD_HASH_TIME_COST``  Argon2id cost (defaults 19456 / 2)
``API_RATE_LIMIT``          default ``600/minute``: API requests per signed-in user (anonymous:
                            per client IP), beyond it 429 with Retry-After; empty = off
``TRUSTED_PROXY_HOPS``      how many reverse proxies in front set ``X-Forwarded-For`` /
                            ``-Proto`` (default 1 when ``VM_ENV=production``, else 0:
                            the headers are ignored and the socket's peer is the client)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from .zones import DEFAULT_TIMEZONE


class ConfigError(RuntimeError):
    """Raised when the environment does not give a usable configuration."""


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the driver this project uses (psycopg 3 for PostgreSQL)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _secret_key(instance_path: str, env: str) -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if env == "production":
        raise ConfigError("SECRET_KEY must be set when VM_ENV=production")
    # Development: one random key per instance folder, shared by every worker.
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def trusted_proxy_hops(env: str) -> int:
    """Return ``TRUSTED_PROXY_HOPS`` (0 to 5): 1 by default in production, 0 otherwise."""
    raw = os.environ.get("TRUSTED_PROXY_HOPS", "1" if env == "production" else "0").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 5:
        raise ConfigError("TRUSTED_PROXY_HOPS must be a whole number from 0 to 5")
    return int(raw)


def check_shared_limits(workers: int, environ: Mapping[str, str]) -> None:
    """Refuse a production server of several workers whose rate limits would be kept per
    worker (``memory://``, the default): each worker would allow the full limit.

    :raises ConfigError: ``VM_ENV=production``, ``workers > 1`` and no shared storage.
    """
    storage = environ.get("RATELIMIT_STORAGE_URI", "memory://")
    if environ.get("VM_ENV") == "production" and workers > 1 and storage.startswith("memory:"):
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI is {storage!r} with {workers} workers: every worker would "
            "keep its own counters. Set RATELIMIT_STORAGE_URI=redis://... (or run 1 worker)."
        )


def build_config(instance_path: str) -> dict[str, Any]:
    """Return the configuration mapping for an app whose instance folder is ``instance_path``."""
    env = os.environ.get("VM_ENV", "development")
    default_db = "sqlite:///" + str(Path(instance_path) / "volunteer_market.db")
    return {
        "VM_ENV": env,
        "SECRET_KEY": _secret_key(instance_path, env),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("DATABASE_URL", default_db)
        ),
        "SQLALCHEMY_RECORD_QUERIES": False,
        # Reverse proxies trusted for the client's address (werkzeug's ProxyFix).
        "TRUSTED_PROXY_HOPS": trusted_proxy_hops(env),
        "SQLITE_BUSY_TIMEOUT_MS": int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "30000")),
        # Rate limits (Flask-Limiter). memory:// is per process: use redis:// with gunicorn.
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Explicit: Flask-Limiter's init_app otherwise inherits ``enabled`` from the
        # previous app built in the process (a test app with limits off turned them off
        # for every later app).
        "RATELIMIT_ENABLED": True,
        # No X-RateLimit-* headers: they told a guesser how many tries were left.
        # 429 answers still carry Retry-After (errors.handle_http_exception).
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_KEY_PREFIX": os.environ.get("RATELIMIT_KEY_PREFIX", "vm"),
        "LOGIN_FAILURES_PER_HOUR": int(os.environ.get("LOGIN_FAILURES_PER_HOUR", "100")),
        # Requests per signed-in user (anonymous: per client IP) to /api/v1; "" = off.
        "API_RATE_LIMIT": os.environ.get("API_RATE_LIMIT", "600/minute"),
        # Passwords: Argon2id, OWASP minimum (m=19 MiB, t=2, p=1).
        "PASSWORD_HASH_MEMORY_KIB": int(os.environ.get("PASSWORD_HASH_MEMORY_KIB", "19456")),
        "PASSWORD_HASH_TIME_COST": int(os.environ.get("PASSWORD_HASH_TIME_COST", "2")),
        "API_TOKEN_TTL": timedelta(hours=int(os.environ.get("API_TOKEN_TTL_HOURS", "720"))),
        # Page sessions.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        # Bulk imports: thread (after the upload's commit), inline, or worker (only
        # ``flask import run-pending`` runs them); see http/imports.py.
        "IMPORT_RUNNER": os.environ.get("IMPORT_RUNNER", "thread"),
        "WTF_CSRF_TIME_LIMIT": None,
        # Notifications outside the app (docs/notifications.md). E-mail: off while
        # SMTP_HOST is empty. The password is read from the environment, never logged.
        "SMTP_HOST": os.environ.get("SMTP_HOST", ""),
        "SMTP_PORT": int(os.environ.get("SMTP_PORT", "587")),
        "SMTP_USER": os.environ.get("SMTP_USER", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_FROM": os.environ.get("SMTP_FROM", "noreply@localhost"),
        "SMTP_STARTTLS": os.environ.get("SMTP_STARTTLS", "1") == "1",
        "SMTP_TIMEOUT": float(os.environ.get("SMTP_TIMEOUT", "20")),
        # 企业微信 group robots: the hosts a community's webhook URL may point to.
        "WECOM_WEBHOOK_HOSTS": tuple(
            h.strip()
            for h in os.environ.get("WECOM_WEBHOOK_HOSTS", "qyapi.weixin.qq.com").split(",")
            if h.strip()
        ),
        "WECOM_WEBHOOK_ALLOW_HTTP": os.environ.get("WECOM_WEBHOOK_ALLOW_HTTP", "0") == "1",
        "WECOM_WEBHOOK_TIMEOUT": float(os.environ.get("WECOM_WEBHOOK_TIMEOUT", "10")),
        # The outbox: attempts, backoff (base * 2**(attempt-1), capped), the lease after
        # which a claim of a run that died is taken again (longer than any send timeout).
        "NOTIFY_MAX_ATTEMPTS": int(os.environ.get("NOTIFY_MAX_ATTEMPTS", "6")),
        "NOTIFY_BACKOFF_SECONDS": int(os.environ.get("NOTIFY_BACKOFF_SECONDS", "60")),
        "NOTIFY_BACKOFF_MAX_SECONDS": int(os.environ.get("NOTIFY_BACKOFF_MAX_SECONDS", "21600")),
        "NOTIFY_LEASE_SECONDS": int(os.environ.get("NOTIFY_LEASE_SECONDS", "600")),
        "NOTIFY_BATCH": int(os.environ.get("NOTIFY_BATCH", "50")),
        # i18n
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": DEFAULT_TIMEZONE,
        "LANGUAGES": ["zh_CN", "en"],
        # OpenAPI (flask-smorest)
        "API_TITLE": "Volunteer Market API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
        "JSON_SORT_KEYS": False,
    }
