"""Business rules. Services take the acting user as an argument, flush and never commit;
the caller (view, API handler, CLI) wraps them in :func:`volunteer_market.database.atomic`."""

from . import session_hold  # noqa: F401,E402  (registers its session listeners)
