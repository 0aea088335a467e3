"""A member's points as shown on /me: spendable wallet, held, and service record."""

from __future__ import annotations

from ..models import User


def points_summary(user: User) -> dict[str, int]:
    """Return ``{available, held, earned_total}`` for ``user``.

    Until the points ledger exists nobody has any points, so every figure is 0;
    the ledger replaces this with its cached balances.
    """
    return {"available": 0, "held": 0, "earned_total": 0}
