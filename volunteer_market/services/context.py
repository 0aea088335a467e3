"""Where the current action comes from, for the audit log.

The web layer sets the origin (client IP) per request and the CLI sets ``cli``;
services read it here instead of touching Flask globals.
"""

from __future__ import annotations

import contextvars

_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("origin", default=None)


def set_origin(origin: str | None) -> contextvars.Token[str | None]:
    """Set the origin recorded by audit entries in this context."""
    return _origin.set(origin)


def current_origin() -> str | None:
    """Return the origin recorded by audit entries in this context."""
    return _origin.get()
