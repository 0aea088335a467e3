"""Login throttling shared by the page form and the API token endpoint, and by the
current-password check of ``/profile``.

Only *failed* attempts count (views call :func:`mark_login_failed`; ``deduct_when``): at most ``LOGIN_FAILURES_PER_HOUR``
per account name and per client IP, in the Flask-Limiter storage (``memory://``
for one process; ``redis://`` so the limit holds across gunicorn workers).
"""

from __future__ import annotations

from flask import current_app, request
from flask_limiter.util import get_remote_address
from flask_login import current_user

from ..extensions import limiter


def _limit() -> str:
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
_FAILED_KEY = "volunteer_market.login_failed"


def mark_login_failed() -> None:
    """Count this request as a failed login attempt."""
    request.environ[_FAILED_KEY] = True


def _failed(_response: object) -> bool:
    return bool(request.environ.get(_FAILED_KEY))


_per_account = limiter.shared_limit(
    _limit, scope="login-account", key_func=_account_key, deduct_when=_failed
)
_per_ip = limiter.shared_limit(
    _limit,
    scope="login-ip",
    key_func=lambda: "ip:" + (get_remote_address() or ""),
    deduct_when=_failed,
)


def login_throttle(fn):  # type: ignore[no-untyped-def]
    """Apply both login limits to a view."""
    return _per_ip(_per_account(fn))


def _signed_in_account_key() -> str:
    name = current_user.username if current_user.is_authenticated else ""
    return "acct:" + name.strip().lower()[:64]


#: The same counter as ``_per_account`` (same scope, same key for the same username).
_per_signed_in_account = limiter.shared_limit(
    _limit, scope="login-account", key_func=_signed_in_account_key, deduct_when=_failed
)


def password_check_throttle(fn):  # type: ignore[no-untyped-def]
    """Apply the login limits to a view that checks the signed-in user's password.

    A wrong current password (``/profile``'s password change; the view calls
    :func:`mark_login_failed`) counts as a failed login of that account and of the
    client's IP: someone holding an unlocked phone cannot guess the password there
    faster than at the login form, and a lock-out holds for both.
    """
    return _per_ip(_per_signed_in_account(fn))
