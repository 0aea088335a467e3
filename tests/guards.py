"""The "nothing changed" guard of the refused-request tests, shared by the conftests.

``unchanged_guard(snapshot)`` returns a context manager class: ``with unchanged(): ...``
takes ``snapshot()`` before the block and asserts it is equal after it (a block that
raises is not checked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def unchanged_guard(snapshot: Callable[[], Any]) -> type:
    """Return the guard class comparing ``snapshot()`` before and after a block."""

    class _Guard:
        def __enter__(self):
            self.before = snapshot()
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                assert snapshot() == self.before, "a refused request changed the database"
            return False

    return _Guard
