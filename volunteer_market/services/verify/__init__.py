"""``ledger verify``: every invariant of the points ledger and of the features built on
it, over the whole database. One home for verification.

Read-only. Sums are SQL aggregates; the hash chain is one ordered, streamed pass
(``yield_per``: a server-side cursor on PostgreSQL), so memory stays flat however
long the ledger grows. Each check reports its first violation (lowest id).

Checks, in the order they run (registered here, nowhere else):

===================  ==================  ============================================
name                 module              invariant
===================  ==================  ============================================
``balanced``         ``ledger.py``       every transaction has >= 2 entries summing to 0
``global_sum``       ``ledger.py``       all entries sum to zero
``cached_balance``   ``ledger.py``       every account's cached balance = its entries
``earned``           ``ledger.py``       every wallet's cached ``earned`` = earn -
                                         reversed earn (other accounts: 0)
``nonnegative``      ``ledger.py``       no member balance is negative, now or after
                                         any transaction
``earn_once``        ``ledger.py``       at most one earn per (delivery, member)
``reversals``        ``ledger.py``       a reversal references an earlier, existing,
                                         non-reversal transaction, at most once, with
                                         exactly the negated entries
``hash_chain``       ``chain.py``        every ``prev_hash`` links to the previous
                                         transaction of its chain (legacy, community);
                                         every ``hash`` matches its content
``head``             ``chain.py``        the legacy head and every chain head point at
                                         their chain's last transaction, hash, count
``anchors``          ``chain.py``        the anchor chain links; every anchored head
                                         names its chain's transaction and hash
``ranking_rollups``  ``rankings.py``     ranking rollups equal a fresh recomputation
``settlements``      ``settlements.py``  settlement lines agree with their earns
``redemptions``      ``redemptions.py``  holds/finals match their redemptions; held
                                         balances; per-member limits
``reward_stock``     ``redemptions.py``  stock never negative, chained stock changes
===================  ==================  ============================================

The first ten are the ledger's own (:data:`BUILTIN_CHECKS`); the others belong to
features built on the ledger and run after them. ``anchors`` was added with the per-community chains (issue 21).

Rooms: ``registry.py`` (:class:`Violation`, the registry, :func:`verify`,
:func:`verify_all`, :func:`stats`); ``frozen.py`` (the constant queries the checks
run, :class:`~.frozen.FrozenSelect`, and the one ``EXISTS`` probe); one module per
group of checks (table above).

Direction: this package imports the domain (models, ``services.ledger.hashing``,
``services.rankings.rebuild``); no domain service imports it.
"""

from __future__ import annotations

from . import chain, ledger, rankings, redemptions, settlements
from .registry import (
    Check,
    Violation,
    check_names,
    register_check,
    stats,
    verify,
    verify_all,
)

#: The ledger's own checks, in the order they run.
_LEDGER_CHECKS: tuple[tuple[str, Check], ...] = (
    ("balanced", ledger.check_balanced),
    ("global_sum", ledger.check_global_sum),
    ("cached_balance", ledger.check_cached_balance),
    ("earned", ledger.check_earned),
    ("nonnegative", ledger.check_nonnegative),
    ("earn_once", ledger.check_earn_once),
    ("reversals", ledger.check_reversals),
    ("hash_chain", chain.check_hash_chain),
    ("head", chain.check_head),
    ("anchors", chain.check_anchors),
)
#: The checks of the features built on the ledger, run after the ledger's own.
_FEATURE_CHECKS: tuple[tuple[str, Check], ...] = (
    ("ranking_rollups", rankings.check_ranking_rollups),
    ("settlements", settlements.check_settlements),
    ("redemptions", redemptions.check_redemptions),
    ("reward_stock", redemptions.check_reward_stock),
)

#: The names of the ledger's own checks.
BUILTIN_CHECKS: tuple[str, ...] = tuple(name for name, _fn in _LEDGER_CHECKS)

for _name, _fn in (*_LEDGER_CHECKS, *_FEATURE_CHECKS):
    register_check(_name)(_fn)

__all__ = [
    "BUILTIN_CHECKS",
    "Violation",
    "check_names",
    "stats",
    "verify",
    "verify_all",
]
