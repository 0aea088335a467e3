"""Throttles of failed attempts, shared by the pages and the API.

Only *failed* attempts count: a view calls :func:`mark_login_failed` or
:func:`mark_code_failed` and the limiter deducts on the way out (``deduct_when``).
The counters live in the Flask-Limiter storage (``memory://`` for one process;
``redis://`` so a limit holds across gunicorn workers).

* Logins -- the page form, the API token endpoint and the current-password check of
  ``/profile``: at most ``LOGIN_FAILURES_PER_HOUR`` failures per account name and per
  client IP.
* Self-registrations -- ``POST /register`` and ``POST /api/v1/registrations``: at most
  ``REGISTRATIONS_PER_HOUR`` (default 10) per client IP, every attempt counted.
* Rating codes -- the password-free six digits or QR token (``/rate``,
  ``POST /api/v1/ratings/by-code``): at most ``RATING_CODE_FAILURES_PER_HOUR``
  (default 20) failures per client IP; beyond it every code attempt from that IP gets
  429 with ``Retry-After``. A million codes at 20 guesses an hour per IP is not a
  practical attack; the codes also die with the rating window and after one use.
* The API -- every request to an ``/api/v1`` operation: at most ``API_RATE_LIMIT``
  (default ``600/minute``) per signed-in user (every token of the user together), per
  client IP for anonymous callers and unknown tokens; beyond it 429 problem+json with
  ``Retry-After`` (:func:`check_api_rate`, called by the API's authentication step).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from flask import current_app, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import RateLimitItem, parse
from werkzeug.exceptions import TooManyRequests

from ..extensions import limiter

View = Callable[..., Any]

# --- logins -------------------------------------------------------------------------


def _login_limit() -> str:
    return f"{current_app.config['LOGIN_FAILURES_PER_HOUR']}/hour"


def _account_key() -> str:
    name = ""
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("username"), str):
            name = body["username"]
    else:
        name = request.form.get("username", "")
    return "acct:" + name.strip().lower()[:64]


#: Kept in the WSGI environ, not in ``g``: ``g`` lives as long as the app context,
#: which can span several requests (an app context pushed by a test or a script),
#: and a stale flag would count later successful or harmless requests as failures.
_LOGIN_FAILED_KEY = "volunteer_market.login_failed"


def mark_login_failed() -> None:
    """Count this request as a failed login attempt."""
    request.environ[_LOGIN_FAILED_KEY] = True


def _login_failed(_response: object) -> bool:
    return bool(request.environ.get(_LOGIN_FAILED_KEY))


_per_account = limiter.shared_limit(
    _login_limit, scope="login-account", key_func=_account_key, deduct_when=_login_failed
)
_per_ip = limiter.shared_limit(
    _login_limit,
    scope="login-ip",
    key_func=lambda: "ip:" + (get_remote_address() or ""),
    deduct_when=_login_failed,
)


def login_throttle(fn: View) -> View:
    """Apply both login limits to a view."""
    return _per_ip(_per_account(fn))


def _signed_in_account_key() -> str:
    if current_user.is_authenticated:
        return "acct:" + current_user.username.strip().lower()[:64]
    # The API (``POST /api/v1/me/password``): the limiter runs before the bearer token
    # is resolved, so the counter is per token (and per IP below).
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "tok:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    return "acct:"


#: The same counter as ``_per_account`` (same scope, same key for the same username).
_per_signed_in_account = limiter.shared_limit(
    _login_limit,
    scope="login-account",
    key_func=_signed_in_account_key,
    deduct_when=_login_failed,
)


def password_check_throttle(fn: View) -> View:
    """Apply the login limits to a view that checks the signed-in user's password.

    A wrong current password (``/profile``'s password change; the view calls
    :func:`mark_login_failed`) counts as a failed login of that account and of the
    client's IP: someone holding an unlocked phone cannot guess the password there
    faster than at the login form, and a lock-out holds for both.
    """
    return _per_ip(_per_signed_in_account(fn))


# --- rating codes -------------------------------------------------------------------

DEFAULT_CODE_FAILURES_PER_HOUR = 20
_CODE_FAILED_KEY = "volunteer_market.rating_code_failed"


def _code_limit() -> str:
    per_hour = current_app.config.get(
        "RATING_CODE_FAILURES_PER_HOUR", DEFAULT_CODE_FAILURES_PER_HOUR
    )
    return f"{int(per_hour)}/hour"


def mark_code_failed() -> None:
    """Count this request as a failed rating-code attempt."""
    request.environ[_CODE_FAILED_KEY] = True


def _code_failed(_response: object) -> bool:
    return bool(request.environ.get(_CODE_FAILED_KEY))


_codes_per_ip = limiter.shared_limit(
    _code_limit,
    scope="rating-code-ip",
    key_func=lambda: "ip:" + (get_remote_address() or ""),
    deduct_when=_code_failed,
)


def rating_code_throttle(fn: View) -> View:
    """Apply the per-IP failure limit to a view that accepts rating codes."""
    return _codes_per_ip(fn)


# --- self-registration --------------------------------------------------------------

DEFAULT_REGISTRATIONS_PER_HOUR = 10


def _registration_limit() -> str:
    per_hour = current_app.config.get("REGISTRATIONS_PER_HOUR", DEFAULT_REGISTRATIONS_PER_HOUR)
    return f"{int(per_hour)}/hour"


_registrations_per_ip = limiter.shared_limit(
    _registration_limit,
    scope="registration-ip",
    key_func=lambda: "ip:" + (get_remote_address() or ""),
    methods=["POST"],
)


def registration_throttle(fn: View) -> View:
    """Apply the per-IP limit on self-registrations (every POST counts, not only failed
    ones: an anonymous form that stores rows is what a flood would aim at)."""
    return _registrations_per_ip(fn)


# --- the API ------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _parsed(spec: str) -> RateLimitItem:
    return parse(spec)


def check_api_rate(user_id: int | None) -> None:
    """Count this API request against ``API_RATE_LIMIT``: per user when the caller is
    signed in (``user_id``), per client IP otherwise (anonymous, unknown token).

    Kept in the Flask-Limiter storage (the same as the other limits); the request is
    counted before it is served, so parallel requests cannot overrun the limit. An
    empty ``API_RATE_LIMIT`` or a disabled limiter turns it off.

    :raises TooManyRequests: the limit is used up (429 with ``Retry-After``).
    """
    spec = current_app.config.get("API_RATE_LIMIT")
    if not spec or not limiter.enabled:
        return
    item = _parsed(str(spec))
    key = f"user:{user_id}" if user_id is not None else "ip:" + (get_remote_address() or "")
    prefix = str(current_app.config.get("RATELIMIT_KEY_PREFIX", ""))
    strategy = limiter.limiter
    if strategy.hit(item, prefix, "api", key):
        return
    reset_at, _remaining = strategy.get_window_stats(item, prefix, "api", key)
    wait = max(1, int(reset_at - time.time()) + 1)
    raise TooManyRequests(
        description=f"Too many API requests; retry in {wait} seconds.", retry_after=wait
    )
