"""Eligibility flags: excluded members' rows are flagged and left out of the buckets.

A member row carries ``eligible`` (:meth:`MemberState.eligible_in`). A change of
``users.is_active`` or of a role grant is noticed by the session hooks below, and
:func:`refresh_eligibility` flips that member's rows and moves them out of (or back
into) the score buckets in the same transaction. ``MARK_EXCLUDED_SQL`` is the bulk
form for loads that write member rows in SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ...database import writing
from ...extensions import db
from ...models import Area, RoleGrant, User
from ...models.rankings import RankingMember
from ..ledger.head import lock_all_heads
from .members import MemberState, member_states
from .rollups import flush_pending, move_buckets

_rm = cast(sa.Table, RankingMember.__table__)


@functools.cache
def _member_areas_statement() -> sa.Select[Any]:
    """The (user, area, flag) combinations of the member rows of users ``ids``."""
    areas = Area.__table__
    return (
        sa.select(_rm.c.user_id, _rm.c.area_id, areas.c.path, _rm.c.eligible)
        .select_from(_rm.join(areas, areas.c.id == _rm.c.area_id))
        .where(_rm.c.user_id.in_(sa.bindparam("ids", expanding=True)))
        .distinct()
    )


@functools.cache
def _flag_update() -> Any:
    p = sa.bindparam
    return (
        _rm.update()
        .where(_rm.c.user_id == p("b_user_id"), _rm.c.area_id == p("b_area_id"))
        .where(_rm.c.eligible == p("was", type_=sa.Boolean()))
        .values(eligible=p("now", type_=sa.Boolean()))
        .returning(_rm.c.area_id, _rm.c.period_key, _rm.c.points)
    )


#: The bulk form of :meth:`MemberState.eligible_in` over the whole table, for bulk
#: loads (``bench.generate``) that write member rows in SQL: rows whose member is
#: suspended, or holds an ended member grant on an area related to the row's area
#: (its subtree or an ancestor) and no active one there. Migration 0004 holds a copy.
MARK_EXCLUDED_SQL = """
UPDATE ranking_members SET eligible = false
WHERE user_id IN (SELECT id FROM users WHERE is_active = false)
   OR (user_id IN (SELECT user_id FROM role_grants
                   WHERE role = 'member' AND revoked_at IS NOT NULL)
       AND EXISTS (
           SELECT 1 FROM role_grants g, areas ga, areas x
           WHERE g.user_id = ranking_members.user_id AND g.role = 'member'
             AND g.revoked_at IS NOT NULL AND ga.id = g.area_id
             AND x.id = ranking_members.area_id
             AND (ga.path LIKE x.path || '%' OR x.path LIKE ga.path || '%'))
       AND NOT EXISTS (
           SELECT 1 FROM role_grants g, areas ga, areas x
           WHERE g.user_id = ranking_members.user_id AND g.role = 'member'
             AND g.revoked_at IS NULL AND ga.id = g.area_id
             AND x.id = ranking_members.area_id
             AND (ga.path LIKE x.path || '%' OR x.path LIKE ga.path || '%')))
"""


def refresh_eligibility(user_ids: Iterable[int]) -> int:
    """Set ``eligible`` on every member row of ``user_ids`` from their current state
    (:meth:`MemberState.eligible_in`) and move the rows whose flag changes into or out
    of the score buckets; return the number of rows changed.

    Called by the session hook below whenever ``users.is_active`` or a role grant
    changes, in the same transaction. Inside ``atomic()`` it first takes every chain
    head (``lock_all_heads``: a member's rows and the buckets they move between are
    written by postings of any community), so a concurrent posting either finished
    before (its rows are seen and fixed here) or starts after (it reads the new state);
    this transaction's own deferred bucket moves are written first (``flush_pending``).
    """
    ids = sorted(set(user_ids))
    if not ids:
        return 0
    if writing():
        lock_all_heads()
        flush_pending()
    conn = db.session.connection()
    rows = conn.execute(_member_areas_statement(), {"ids": ids}).all()
    if not rows:
        return 0
    states = member_states(ids)
    inc: list[tuple[int, str, int]] = []
    dec: list[tuple[int, str, int]] = []
    changed = 0
    for r in rows:
        state = states.get(r.user_id, MemberState(active=False))
        now = state.eligible_in(r.path)
        if now == bool(r.eligible):
            continue
        for area_id, key, points in conn.execute(
            _flag_update(),
            {
                "b_user_id": r.user_id,
                "b_area_id": r.area_id,
                "was": bool(r.eligible),
                "now": now,
            },
        ):
            changed += 1
            if points > 0:
                (inc if now else dec).append((area_id, key, int(points)))
    move_buckets(inc, dec)
    return changed


_PENDING = "rankings.eligibility_pending"


def _our_session(session: Session) -> bool:
    return has_app_context() and session is db.session()


@event.listens_for(Session, "before_flush")
def _note_eligibility_changes(session: Session, _context: Any, _instances: Any) -> None:
    """Remember the users whose ``is_active`` or role grants this flush changes."""
    if not _our_session(session):
        return
    users: set[int] = set()
    for obj in session.dirty:
        if isinstance(obj, User) and sa.inspect(obj).attrs.is_active.history.has_changes():
            users.add(obj.id)
        elif isinstance(obj, RoleGrant) and session.is_modified(obj):
            users.add(obj.user_id)
    for obj in session.new:
        if isinstance(obj, RoleGrant):
            user = obj.__dict__.get("user")  # never a lazy load inside a flush
            uid = obj.user_id if obj.user_id is not None else getattr(user, "id", None)
            if uid is not None:
                users.add(uid)
    if users:
        session.info.setdefault(_PENDING, set()).update(users)


@event.listens_for(Session, "after_flush_postexec")
def _refresh_noted(session: Session, _context: Any) -> None:
    """Refresh the flags of the users noted above, in the flush's transaction."""
    users = session.info.pop(_PENDING, None)
    if users and _our_session(session):
        with session.no_autoflush:
            refresh_eligibility(users)
