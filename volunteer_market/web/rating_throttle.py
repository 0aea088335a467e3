"""Throttling of password-free rating codes (brute force of the six digits).

Like the login throttle (``web/throttle.py``), only *failed* attempts count: a view
calls :func:`mark_code_failed` when a code or token does not open a rating. At most
``RATING_CODE_FAILURES_PER_HOUR`` (default 20) failures per client IP per hour,
shared by the page (``/rate``) and the API (``POST /api/v1/ratings/by-code``), kept
in the Flask-Limiter storage (``redis://`` so the limit holds across gunicorn
workers). Beyond it every code attempt from that IP gets 429 with ``Retry-After``.
A million codes at 20 guesses an hour per IP is not a practical attack; the codes
also die with the rating window and after one use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_limiter.util import get_remote_address

from ..extensions import limiter

DEFAULT_FAILURES_PER_HOUR = 20
_FAILED_KEY = "volunteer_market.rating_code_failed"


def _limit() -> str:
    per_hour = current_app.config.get("RATING_CODE_FAILURES_PER_HOUR", DEFAULT_FAILURES_PER_HOUR)
    return f"{int(per_hour)}/hour"


def mark_code_failed() -> None:
    """Count this request as a failed rating-code attempt."""
    request.environ[_FAILED_KEY] = True


def _failed(_response: object) -> bool:
    return bool(request.environ.get(_FAILED_KEY))


_per_ip = limiter.shared_limit(
    _limit,
    scope="rating-code-ip",
    key_func=lambda: "ip:" + (get_remote_address() or ""),
    deduct_when=_failed,
)


def rating_code_throttle(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Apply the per-IP failure limit to a view that accepts rating codes."""
    return _per_ip(fn)
