"""Rankings (排行榜): rollups kept in the posting's transaction, read without the ledger.

Design overview (details and the reasons in ``docs/rankings.md``)
=================================================================

Writing. :func:`apply_posting` (``rollups.py``) runs from the ledger's posting hook
(``services.ledger.posting._after_post``) inside every
posting, after the head and account locks (lock order: head, accounts, rollups; the
score buckets, shared across communities, are deferred to the commit and written in
key order: ``rollups.flush_pending``).
An ``earn`` adds its member-available amount and ``minutes``; a ``reverse`` of an
earn subtracts them. Rows touched, per posting:

* areas: the transaction's community and its ancestors (street, district) from
  ``Area.path`` -- no tree walking -- plus every grid of that community on which
  the member held a *member* grant at the posting time (``granted_at <= t <
  revoked_at``; usually none or one);
* periods: ``all``, ``YYYY``, ``YYYY-Qn``, ``YYYY-MM`` of the posting time in the
  community's time zone (``Area.timezone``). A reversal counts in the periods
  (and grids) of the earn it reverses, so a month's ranking is that month's earns
  minus their reversals and no row ever goes negative;
* :class:`RankingMember` rows (one multi-row ``INSERT .. ON CONFLICT DO UPDATE SET
  points = points + excluded.points ..`` on both engines, race-safe), the
  :class:`RankingScoreCount` buckets they move between, and, when the earn's
  delivery belongs to a project, :class:`RankingTeam` rows (community and ancestors).

``reached_at`` of a row is the ``created_at`` of the latest posting counted in it.
:func:`rebuild` (``rebuild.py``) recomputes every rollup from the ledger in member-id
chunks and ``ledger verify``'s ``ranking_rollups`` check compares them with a fresh
recomputation.

Eligibility. Each member row carries ``eligible``: False while the member is
suspended or their member role there has ended (a revoked member grant on the area's
subtree or ancestors and no active one there, :meth:`MemberState.eligible_in`). The
score buckets count eligible rows only. The posting that creates a row sets the flag
from the member's current state; a change of ``users.is_active`` or of a role grant
is noticed by a session hook (``eligibility.py``), and :func:`refresh_eligibility`
flips that member's rows and moves them out of (or back into) the buckets in the same
transaction.

Reading. A ranking reads only rollups, settings and users:

* the page walks ``ix_ranking_members_top`` (points desc, reached_at, user id) with
  LIMIT/OFFSET, skipping ineligible rows; rank = 1 + the score buckets above
  (standard competition ranking 1, 2, 2, 4); total = the buckets above 0;
* ``me`` is a primary-key lookup plus the same bucket sum, on or off the page.

No caching: every read is a few index range scans, exact at the moment of reading.

Rooms of this package
=====================

``periods.py``      period keys of a moment, parsing a period, recent months
``members.py``      a member's state: suspended or not, member grants, eligibility
``rollups.py``      the posting hook: contributions, apply, score-bucket moves
``eligibility.py``  the stored eligibility flags and the session hooks that keep them
``rebuild.py``      recomputation from the ledger (``rankings rebuild``)
``exposure.py``     exposure settings (full list, top-N, tiers)
``boards.py``       member rankings: a page, "my rank", tiers, paging, scopes, months
``tables.py``       team and community tables

Import direction: ``rollups`` imports nothing of the ledger package (the ledger's
posting hook imports it); ``eligibility`` and ``rebuild`` take every chain head
(``lock_all_heads``) from ``services.ledger.head``, which imports neither package. The limits
(``PERIOD_RE``, ``MAX_PER_PAGE``, ``MAX_TOP_N``) live in ``models/rankings.py``.
"""

from .boards import (
    TIER_NAMES,
    default_area,
    get_area,
    hours,
    monthly_points,
    ranking,
    scope_choices,
    sees_full_list,
)
from .eligibility import MARK_EXCLUDED_SQL, refresh_eligibility
from .exposure import ExposureSetting, exposure_for, set_exposure
from .members import MemberGrant, MemberState, member_states
from .periods import current_periods, parse_period, period_keys, recent_months
from .rebuild import CHUNK, rebuild
from .rollups import Contribution, RollupsOutOfSync, apply, apply_posting, contribution_of
from .tables import community_table, team_ranking

__all__ = [
    "CHUNK",
    "MARK_EXCLUDED_SQL",
    "TIER_NAMES",
    "Contribution",
    "ExposureSetting",
    "MemberGrant",
    "MemberState",
    "RollupsOutOfSync",
    "apply",
    "apply_posting",
    "community_table",
    "contribution_of",
    "current_periods",
    "default_area",
    "exposure_for",
    "get_area",
    "hours",
    "member_states",
    "monthly_points",
    "parse_period",
    "period_keys",
    "ranking",
    "rebuild",
    "recent_months",
    "refresh_eligibility",
    "scope_choices",
    "sees_full_list",
    "set_exposure",
    "team_ranking",
]
