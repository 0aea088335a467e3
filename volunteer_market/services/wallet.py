"""A member's points as shown on /me and the home page: wallet, held, service record."""

from __future__ import annotations

from ..models import User
from . import ledger


def points_summary(user: User) -> dict[str, int]:
    """Return ``{available, held, earned_total}`` for ``user`` from the cached balances.

    ``available`` is the spendable wallet, ``held`` the points reserved for pending
    redemptions, ``earned_total`` the service record (earn minus reversed earn;
    never lowered by redemption or expiry). Zeros when the user has no accounts.
    """
    return ledger.balances(user)
