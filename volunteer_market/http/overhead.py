"""Per-request work that every request paid for nothing (issue 21, item 3).

Measured with ``python -m bench.profile_request URL`` (docs/benchmarks.md, "Item 3"):

* Flask's cookie-session interface builds a new ``URLSafeTimedSerializer`` (and its
  key list) on every request, to open the session and again to save it.
  :class:`CookieSessionInterface` builds it once per secret (the current key and the
  fallbacks) and reuses it: same cookies, same keys, same rotation.
* Flask-Limiter's ``before_request`` resolves the default, application and blueprint
  limits of every request. The app has none of those: every limit is a decorator
  (``http/throttles.py``), and a decorated view checks its limits in its own wrapper;
  the API's per-user request limit is ``throttles.check_api_rate``, called by the API's
  authentication. :func:`drop_idle_limiter_check` removes that ``before_request`` when
  no such limit is configured, and leaves it when one is.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the signing serializer built once per secret."""

    def __init__(self) -> None:
        self._cached: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        secrets = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._cached
        if cached is None or cached[0] != secrets:
            cached = (secrets, super().get_signing_serializer(app))
            self._cached = cached
        return cached[1]


def drop_idle_limiter_check(app: Flask, limiter: Any) -> bool:
    """Remove Flask-Limiter's per-request ``before_request`` check when the app has no
    default, application, meta or blueprint limit for it to check; return True if it
    was removed. Decorated limits are checked by their decorators either way.
    (``init_app`` has copied ``RATELIMIT_DEFAULT``, ``_APPLICATION`` and ``_META`` into
    the limiter, so the limiter alone says whether there is such a limit.)"""
    manager = limiter.limit_manager
    if manager.default_limits or manager.application_limits or manager._blueprint_limits:  # noqa: SLF001
        return False
    if any(limiter._meta_limits):  # noqa: SLF001
        return False
    funcs = app.before_request_funcs.get(None, [])
    check = limiter._check_request_limit  # noqa: SLF001
    kept = [f for f in funcs if f != check]
    if len(kept) == len(funcs):
        return False
    app.before_request_funcs[None] = kept
    return True
