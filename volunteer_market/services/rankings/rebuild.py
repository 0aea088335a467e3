"""Recomputation of every rollup from the ledger (``flask --app wsgi rankings rebuild``).

:func:`recompute` derives the member and team rows of a chunk of members from their
earns and reversals of earns; :func:`rebuild` replaces the rollups with it. ``ledger
verify`` (``services/verify/rankings.py``) compares the stored rollups with the same
recomputation.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ...database import writing
from ...extensions import db
from ...models import (
    AccountKind,
    Area,
    AreaKind,
    Delivery,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)
from ...models.rankings import RankingMember, RankingScoreCount, RankingTeam
from ..ledger.head import lock_all_heads
from .annual import rebuild_annual
from .members import MemberState, member_states
from .periods import period_keys
from .rollups import Contribution, pending_reset

#: Members per chunk in :func:`rebuild` and the verify comparison.
CHUNK = 500

_rm = cast(sa.Table, RankingMember.__table__)
_rs = cast(sa.Table, RankingScoreCount.__table__)
_rt = cast(sa.Table, RankingTeam.__table__)

Totals = dict[tuple[int, str, int], list[Any]]  # key -> [points, minutes, reached_at]


@functools.cache
def earners_statement() -> sa.Select[Any]:
    """Every member with an earn, ascending (built once)."""
    t = LedgerTransaction
    return (
        sa.select(t.member_id)
        .where(t.kind == TransactionKind.EARN, t.member_id.is_not(None))
        .distinct()
        .order_by(t.member_id)
    )


def earner_ids() -> list[int]:
    """Return the ids of every member with an earn, ascending (flushes first)."""
    db.session.flush()
    return [int(r[0]) for r in db.session.connection().execute(earners_statement())]


def chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    """Yield ``ids`` in lists of :data:`CHUNK`."""
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])


@functools.cache
def _contribution_statement() -> sa.Select[Any]:
    """The earns statement of :func:`_contributions` (built once; ids are expanding)."""
    ids: sa.BindParameter[int] = sa.bindparam("ids", expanding=True)
    t = LedgerTransaction
    o = aliased(LedgerTransaction)
    e, acc = LedgerEntry, LedgerAccount
    points = (
        sa.select(sa.func.coalesce(sa.func.sum(e.amount), 0))
        .join(acc, acc.id == e.account_id)
        .where(e.transaction_id == t.id, acc.kind == AccountKind.MEMBER_AVAILABLE)
        .scalar_subquery()
    )
    earns = (
        sa.select(
            t.id,
            t.kind,
            t.member_id,
            t.community_id,
            t.created_at,
            t.minutes,
            o.created_at.label("original_at"),
            points.label("points"),
            Area.path,
            Area.kind.label("area_kind"),
            Area.timezone,
            Delivery.project_id,
        )
        .outerjoin(o, o.id == t.reverses_id)
        .join(Area, Area.id == t.community_id)
        .outerjoin(Delivery, Delivery.id == t.delivery_id)
        .where(
            t.member_id.in_(ids),
            sa.or_(
                t.kind == TransactionKind.EARN,
                sa.and_(t.kind == TransactionKind.REVERSE, o.kind == TransactionKind.EARN),
            ),
        )
        .order_by(t.member_id, t.id)
    )
    return earns


def _contributions(member_ids: list[int], states: dict[int, MemberState]) -> Iterator[Contribution]:
    """Yield the contributions of the given members' earns and reversals of earns
    (``states``: :func:`member_states` of the members, for their grid grants)."""
    conn = db.session.connection()
    for r in conn.execute(_contribution_statement(), {"ids": member_ids}):
        reverse = r.kind == TransactionKind.REVERSE
        effective_at = r.original_at if reverse else r.created_at
        minutes = -(r.minutes or 0) if reverse else (r.minutes or 0)
        if int(r.points) == 0 and minutes == 0:
            continue
        grids: tuple[int, ...] = ()
        if r.area_kind == AreaKind.COMMUNITY:
            state = states.get(r.member_id, MemberState(active=False))
            grids = state.grids_at(r.community_id, effective_at)
        yield Contribution(
            member_id=r.member_id,
            points=int(r.points),
            minutes=minutes,
            effective_at=effective_at,
            posted_at=r.created_at,
            area_ids=tuple(int(p) for p in r.path.strip("/").split("/") if p),
            grid_ids=grids,
            timezone=r.timezone,
            project_id=r.project_id,
        )


def _add(totals: Totals, key: tuple[int, str, int], c: Contribution) -> None:
    row = totals.get(key)
    if row is None:
        totals[key] = [c.points, c.minutes, c.posted_at]
    else:
        row[0] += c.points
        row[1] += c.minutes
        if c.posted_at > row[2]:
            row[2] = c.posted_at


def area_paths_all() -> dict[int, str]:
    """Return every area's path by id."""
    return {int(a): p for a, p in db.session.connection().execute(_AREA_PATHS)}


_AREA_PATHS = sa.select(Area.__table__.c.id, Area.__table__.c.path)


def recompute(member_ids: list[int], teams: Totals, paths: dict[int, str]) -> Totals:
    """Return the member rows of ``member_ids`` recomputed from the ledger, each
    ``[points, minutes, reached_at, eligible]`` (``eligible`` from the members' current
    state; ``paths``: every area's path); add the team rows of their contributions to
    ``teams``."""
    members: Totals = {}
    states = member_states(member_ids)
    for c in _contributions(member_ids, states):
        keys = period_keys(c.effective_at, c.timezone)
        for area_id in {*c.area_ids, *c.grid_ids}:
            for key in keys:
                _add(members, (area_id, key, c.member_id), c)
        if c.project_id is not None:
            for area_id in c.area_ids:
                for key in keys:
                    _add(teams, (area_id, key, c.project_id), c)
    for (area_id, _key, user_id), row in members.items():
        state = states.get(user_id, MemberState(active=False))
        row.append(state.eligible_in(paths[area_id]))
    return members


def rebuild() -> dict[str, int]:
    """Recompute every rollup from the ledger; return row counts.

    Runs inside ``atomic()`` and takes every chain head first (``lock_all_heads``: the
    registry, then each head ascending), so no posting of any community interleaves;
    deferred bucket moves of this transaction are dropped (the rebuild recomputes them). Used by ``flask --app wsgi rankings rebuild``.
    """
    if not writing():
        raise RuntimeError("rankings.rebuild must run inside database.atomic()")
    lock_all_heads()
    pending_reset(0)
    for table in (_rs, _rm, _rt):
        db.session.execute(table.delete())
    teams: Totals = {}
    n_members = 0
    paths = area_paths_all()
    for chunk in chunks(earner_ids()):
        rows = [
            {
                "area_id": a,
                "period_key": k,
                "user_id": u,
                "points": v[0],
                "minutes": v[1],
                "reached_at": v[2],
                "eligible": v[3],
            }
            for (a, k, u), v in sorted(recompute(chunk, teams, paths).items())
        ]
        if rows:
            db.session.execute(_rm.insert(), rows)
            n_members += len(rows)
    team_rows = [
        {
            "area_id": a,
            "period_key": k,
            "project_id": p,
            "points": v[0],
            "minutes": v[1],
            "reached_at": v[2],
        }
        for (a, k, p), v in sorted(teams.items())
    ]
    if team_rows:
        db.session.execute(_rt.insert(), team_rows)
    db.session.execute(
        _rs.insert().from_select(
            ["area_id", "period_key", "points", "members"],
            sa.select(_rm.c.area_id, _rm.c.period_key, _rm.c.points, sa.func.count())
            .where(_rm.c.points > 0, _rm.c.eligible)
            .group_by(_rm.c.area_id, _rm.c.period_key, _rm.c.points),
        )
    )
    n_buckets = db.session.scalar(sa.select(sa.func.count()).select_from(_rs)) or 0
    annual = rebuild_annual()
    return {"members": n_members, "teams": len(team_rows), "buckets": int(n_buckets), **annual}
