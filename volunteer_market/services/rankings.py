"""Rankings (排行榜): rollups kept in the posting's transaction, read without the ledger.

Design overview (details and the reasons in ``docs/rankings.md``)
=================================================================

Writing. :func:`apply_posting` runs from ``services.ledger._after_post`` inside every
posting, after the head and account locks (lock order: head, accounts, rollups).
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
:func:`rebuild` recomputes every rollup from the ledger in member-id chunks and
:func:`first_mismatch` (``ledger verify``) compares them with a fresh recomputation.

Eligibility. Each member row carries ``eligible``: False while the member is
suspended or their member role there has ended (a revoked member grant on the area's
subtree or ancestors and no active one there, :meth:`MemberState.eligible_in`). The
score buckets count eligible rows only. The posting that creates a row sets the flag
from the member's current state; a change of ``users.is_active`` or of a role grant
is noticed by a session hook, and :func:`refresh_eligibility` flips that member's
rows and moves them out of (or back into) the buckets in the same transaction.

Reading. A ranking reads only rollups, settings and users:

* the page walks ``ix_ranking_members_top`` (points desc, reached_at, user id) with
  LIMIT/OFFSET, skipping ineligible rows; rank = 1 + the score buckets above
  (standard competition ranking 1, 2, 2, 4); total = the buckets above 0;
* ``me`` is a primary-key lookup plus the same bucket sum, on or off the page.

No caching: every read is a few index range scans, exact at the moment of reading.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.util import identity_key

from ..database import frozen, frozen_violation, writing
from ..extensions import db
from ..models import (
    AccountKind,
    Area,
    AreaKind,
    Delivery,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Project,
    Role,
    RoleGrant,
    TransactionKind,
    User,
    UTCDateTime,
    utcnow,
)
from ..models.rankings import (
    MAX_PER_PAGE,
    MAX_TOP_N,
    PERIOD_RE,
    Exposure,
    RankingMember,
    RankingScoreCount,
    RankingSettings,
    RankingTeam,
)
from ..zones import DEFAULT_TIMEZONE, zone
from . import audit, permissions
from .errors import NotFound, ValidationFailed

#: Members per chunk in :func:`rebuild` and :func:`first_mismatch`.
CHUNK = 500

TIER_NAMES = ("gold", "silver", "bronze")

_rm = RankingMember.__table__
_rs = RankingScoreCount.__table__
_rt = RankingTeam.__table__


# --- periods ----------------------------------------------------------------------------


def period_keys(moment: datetime, tz: str = DEFAULT_TIMEZONE) -> list[str]:
    """Return the period keys of ``moment`` in time zone ``tz``:
    ``["all", "2026", "2026-Q4", "2026-11"]``."""
    local = moment.astimezone(_zone(tz))
    quarter = (local.month - 1) // 3 + 1
    return ["all", f"{local.year:04d}", f"{local.year:04d}-Q{quarter}", f"{local:%Y-%m}"]


def parse_period(value: str | None) -> str:
    """Return the validated period key (``None`` -> ``all``).

    :raises ValidationFailed: not ``all``, ``YYYY``, ``YYYY-Qn`` or ``YYYY-MM``.
    """
    if value is None or value == "":
        return "all"
    if not isinstance(value, str) or not PERIOD_RE.match(value):
        raise ValidationFailed(
            "Unknown period.",
            errors={
                "period": ["Use all, a year (2026), a quarter (2026-Q4) or a month (2026-11)."]
            },
        )
    return value


def recent_months(months: int = 12, tz: str = DEFAULT_TIMEZONE, now: datetime | None = None):
    """Return the last ``months`` month keys up to the current one, oldest first."""
    local = (now or utcnow()).astimezone(_zone(tz))
    year, month = local.year, local.month
    out: list[str] = []
    for _ in range(months):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(out))


def current_periods(tz: str = DEFAULT_TIMEZONE, now: datetime | None = None) -> list[str]:
    """Return ``[all, this year, this quarter, this month]`` keys for pickers."""
    return period_keys(now or utcnow(), tz)


def _zone(tz: str | None) -> ZoneInfo:
    return zone(tz)  # an unknown zone name falls back to the default: never fail a posting


# --- writing: the posting hook ---------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    """What one earn or reversal adds to the rollups (negative for a reversal)."""

    member_id: int
    points: int
    minutes: int
    #: Time whose periods (and grid grants) count: the earn's (a reversal: its earn's).
    effective_at: datetime
    #: The posting's own time: the rows' new ``reached_at``.
    posted_at: datetime
    area_ids: tuple[int, ...]  # community and ancestors (root first)
    grid_ids: tuple[int, ...]
    timezone: str
    project_id: int | None
    #: Areas (of ``area_ids`` and ``grid_ids``) where the member is excluded *now*: a
    #: row this contribution creates there starts with ``eligible`` False.
    ineligible: frozenset[int] = frozenset()


def _member_points(legs: Iterable[tuple[LedgerAccount, int]]) -> int:
    return sum(amount for account, amount in legs if account.kind == AccountKind.MEMBER_AVAILABLE)


@dataclass(frozen=True)
class MemberGrant:
    area_id: int
    path: str
    parent_id: int | None
    kind: AreaKind
    granted_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class MemberState:
    """What the rankings need of a member: suspended or not, and their member grants."""

    active: bool
    grants: tuple[MemberGrant, ...] = ()

    def eligible_in(self, path: str) -> bool:
        """May the member be ranked on the boards of the area at ``path``?

        No if suspended, or if their member role there has ended: an ended member
        grant on the area's subtree or on an ancestor, and no active one there (a
        member who moved from community A to C stays ranked in the district over
        both, but not in A or A's street unless C is in it)."""
        if not self.active:
            return False
        related = [g for g in self.grants if g.path.startswith(path) or path.startswith(g.path)]
        ended = any(g.revoked_at is not None for g in related)
        return not ended or any(g.revoked_at is None for g in related)

    def grids_at(self, community_id: int, at: datetime) -> tuple[int, ...]:
        """The grids of the community where the member held a member grant at ``at``."""
        return tuple(
            sorted(
                {
                    g.area_id
                    for g in self.grants
                    if g.kind == AreaKind.GRID
                    and g.parent_id == community_id
                    and g.granted_at <= at
                    and (g.revoked_at is None or g.revoked_at > at)
                }
            )
        )


@functools.cache
def _member_states_statement() -> sa.Select[Any]:
    """Users (``ids``, expanding) with each of their member grants and its area."""
    users, grants, areas = User.__table__, RoleGrant.__table__, Area.__table__
    granted = grants.join(areas, areas.c.id == grants.c.area_id)
    return (
        sa.select(
            users.c.id,
            users.c.is_active,
            grants.c.area_id,
            areas.c.path,
            areas.c.parent_id,
            areas.c.kind,
            grants.c.granted_at,
            grants.c.revoked_at,
        )
        .select_from(
            users.outerjoin(
                granted, sa.and_(grants.c.user_id == users.c.id, grants.c.role == Role.MEMBER)
            )
        )
        .where(users.c.id.in_(sa.bindparam("ids", expanding=True)))
    )


def member_states(user_ids: Iterable[int]) -> dict[int, MemberState]:
    """Return ``{user_id: MemberState}`` for existing users among ``user_ids`` (one query)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    active: dict[int, bool] = {}
    grants: dict[int, list[MemberGrant]] = defaultdict(list)
    for r in db.session.connection().execute(_member_states_statement(), {"ids": ids}):
        active[r.id] = bool(r.is_active)
        if r.area_id is not None:
            grants[r.id].append(
                MemberGrant(
                    r.area_id,
                    r.path,
                    r.parent_id,
                    AreaKind(r.kind),
                    r.granted_at,
                    r.revoked_at,
                )
            )
    return {u: MemberState(a, tuple(grants.get(u, ()))) for u, a in active.items()}


def _area_paths(community: Area, grid_ids: Iterable[int]) -> dict[int, str]:
    """Paths of the community's ancestors (inclusive) and of its grids ``grid_ids``."""
    ids = community.ancestor_ids()
    paths = {a: "/" + "/".join(map(str, ids[: i + 1])) + "/" for i, a in enumerate(ids)}
    for g in grid_ids:
        paths[g] = f"{community.path}{g}/"
    return paths


_EARN_OF = sa.select(LedgerTransaction.kind, LedgerTransaction.created_at).where(
    LedgerTransaction.id == sa.bindparam("tx_id")
)
_PROJECT_OF = sa.select(Delivery.project_id).where(Delivery.id == sa.bindparam("delivery_id"))


def contribution_of(tx: LedgerTransaction, legs: Sequence[tuple[LedgerAccount, int]]):
    """Return the :class:`Contribution` of a posting, or None if it does not count."""
    if tx.member_id is None or tx.community_id is None:
        return None
    if tx.kind == TransactionKind.EARN:
        effective_at = tx.created_at
    elif tx.kind == TransactionKind.REVERSE and tx.reverses_id is not None:
        original = db.session.execute(_EARN_OF, {"tx_id": tx.reverses_id}).one()
        if original.kind != TransactionKind.EARN:
            return None
        effective_at = original.created_at
    else:
        return None
    points = _member_points(legs)
    minutes = tx.minutes or 0
    if tx.kind == TransactionKind.REVERSE:
        minutes = -minutes
    if points == 0 and minutes == 0:
        return None
    community = db.session.get(Area, tx.community_id)
    if community is None:
        return None
    state = member_states([tx.member_id]).get(tx.member_id, MemberState(active=False))
    grids = (
        state.grids_at(community.id, effective_at) if community.kind == AreaKind.COMMUNITY else ()
    )
    project_id = None
    if tx.delivery_id is not None:
        # Settlement has the delivery in the session already: no query then.
        loaded = db.session.identity_map.get(identity_key(Delivery, tx.delivery_id))
        if loaded is not None and "project_id" in loaded.__dict__:
            project_id = loaded.project_id
        else:
            project_id = db.session.execute(
                _PROJECT_OF, {"delivery_id": tx.delivery_id}
            ).scalar_one_or_none()
    return Contribution(
        member_id=tx.member_id,
        points=points,
        minutes=minutes,
        effective_at=effective_at,
        posted_at=tx.created_at,
        area_ids=tuple(community.ancestor_ids()),
        grid_ids=grids,
        timezone=community.timezone,
        project_id=project_id,
        ineligible=frozenset(
            a for a, path in _area_paths(community, grids).items() if not state.eligible_in(path)
        ),
    )


def apply_posting(tx: LedgerTransaction, legs: Sequence[tuple[LedgerAccount, int]]) -> None:
    """Maintain the rollups for one posting (called by the ledger; same transaction).

    Earns add, reversals of earns subtract; every other kind is ignored. Flushes only.
    """
    found = contribution_of(tx, legs)
    if found is not None:
        apply(found)


def _later(column: Any, incoming: Any) -> Any:
    return sa.case((incoming > column, incoming), else_=column)


class RollupsOutOfSync(RuntimeError):
    """A reversal found no rollup row to subtract from: run ``rankings rebuild``."""


def apply(c: Contribution) -> None:
    """Add (earn) or subtract (reversal) a contribution: member rows, the score buckets
    they move between, team rows.

    Additions are one ``INSERT .. ON CONFLICT DO UPDATE`` executed for all rows at
    once (executemany, sent as one multi-row statement); subtractions are one
    ``UPDATE`` of rows the earn created (CHECK constraints are evaluated on the
    proposed row before the conflict, so a negative insert could never be used).
    The statements are built once per dialect (:func:`_statement`) with bound
    parameters only, so SQLAlchemy compiles them once and reuses them.

    :raises RollupsOutOfSync: a subtraction found fewer rows than the earn created.
    """
    keys = sorted(period_keys(c.effective_at, c.timezone))
    areas = sorted({*c.area_ids, *c.grid_ids})
    member_keys = [(a, k, c.member_id) for a in areas for k in keys]
    changed = _add_or_subtract("member", member_keys, c)
    if c.points != 0:  # a minutes-only change leaves every member in its bucket
        inc: list[tuple[int, str, int]] = []
        dec: list[tuple[int, str, int]] = []
        for area_id, key, new, eligible in changed:
            if not eligible:  # the buckets count eligible members only
                continue
            new = int(new)
            old = new - c.points
            if old > 0:
                dec.append((area_id, key, old))
            if new > 0:
                inc.append((area_id, key, new))
        _move_buckets(inc, dec)
    if c.project_id is not None:
        team_keys = [(a, k, c.project_id) for a in sorted(c.area_ids) for k in keys]
        _add_or_subtract("team", team_keys, c)


_ROLLUPS = {"member": (_rm, "user_id"), "team": (_rt, "project_id")}


@functools.cache
def _statement(dialect: str, name: str) -> Any:
    """Return the rollup write statement ``name`` for ``dialect`` (built once; bound
    parameters only, so its compiled form is cached)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    kind, _, op = name.partition(":")
    if kind == "bucket":
        cols = _rs.c
        key = sa.tuple_(cols.area_id, cols.period_key, cols.points)
        if op == "add":
            ins = insert(_rs)
            return ins.on_conflict_do_update(
                index_elements=[cols.area_id, cols.period_key, cols.points],
                set_={"members": cols.members + ins.excluded.members},
            )
        if op == "sub":
            return (
                _rs.update()
                .where(key.in_(sa.bindparam("keys", expanding=True)))
                .values(members=cols.members - 1)
                .returning(cols.area_id, cols.period_key, cols.points, cols.members)
            )
        # "drop": buckets whose count reached 0 are deleted, as rebuild() never has them.
        return _rs.delete().where(key.in_(sa.bindparam("keys", expanding=True)), cols.members == 0)
    table, owner = _ROLLUPS[kind]
    cols = table.c
    if op == "add":
        ins = insert(table)
        return ins.on_conflict_do_update(
            index_elements=[cols.area_id, cols.period_key, cols[owner]],
            set_={
                "points": cols.points + ins.excluded.points,
                "minutes": cols.minutes + ins.excluded.minutes,
                "reached_at": _later(cols.reached_at, ins.excluded.reached_at),
            },
        ).returning(cols.area_id, cols.period_key, cols.points, *_flag(cols))
    return (
        table.update()
        .where(
            sa.tuple_(cols.area_id, cols.period_key, cols[owner]).in_(
                sa.bindparam("keys", expanding=True)
            )
        )
        .values(
            points=cols.points + sa.bindparam("d_points", type_=sa.Integer()),
            minutes=cols.minutes + sa.bindparam("d_minutes", type_=sa.Integer()),
            reached_at=_later(cols.reached_at, sa.bindparam("posted_at", type_=UTCDateTime())),
        )
        .returning(cols.area_id, cols.period_key, cols.points, *_flag(cols))
    )


def _flag(cols: Any) -> list[Any]:
    """``eligible`` of member rows (team rows have no exclusions: always true)."""
    return [cols.eligible] if "eligible" in cols else [sa.true()]


def _stmt(name: str) -> Any:
    return _statement(db.session.get_bind().dialect.name, name)


def _add_or_subtract(kind: str, keys: list[tuple[int, str, int]], c: Contribution) -> list[Any]:
    """Apply ``c``'s points and minutes to the rows ``keys`` of a rollup table
    (``kind`` member or team); return ``[(area_id, period_key, new points, eligible)]``.
    A member row created here gets ``eligible`` from ``c.ineligible``; an existing
    row keeps its flag (kept current by :func:`refresh_eligibility`)."""
    table, owner = _ROLLUPS[kind]
    if c.points >= 0 and c.minutes >= 0:
        rows = [
            {
                "area_id": a,
                "period_key": k,
                owner: o,
                "points": c.points,
                "minutes": c.minutes,
                "reached_at": c.posted_at,
                **({"eligible": a not in c.ineligible} if kind == "member" else {}),
            }
            for a, k, o in keys
        ]
        return list(db.session.execute(_stmt(f"{kind}:add"), rows).all())
    found = list(
        db.session.execute(
            _stmt(f"{kind}:sub"),
            {
                "keys": keys,
                "d_points": c.points,
                "d_minutes": c.minutes,
                "posted_at": c.posted_at,
            },
        ).all()
    )
    if len(found) != len(keys):
        raise RollupsOutOfSync(
            f"{table.name}: {len(keys) - len(found)} rows missing for a reversal;"
            " run: flask --app wsgi rankings rebuild"
        )
    return found


def _move_buckets(inc: list[tuple[int, str, int]], dec: list[tuple[int, str, int]]) -> None:
    """Count one member more at each ``inc`` bucket and one fewer at each ``dec``;
    a bucket whose count reaches 0 is deleted (like :func:`rebuild`, which only
    writes buckets with members)."""
    if dec:
        dec = sorted(dec)
        done = db.session.execute(_stmt("bucket:sub"), {"keys": dec}).all()
        if len(done) != len(dec):
            raise RollupsOutOfSync(
                "ranking_score_counts: a bucket is missing; run: flask --app wsgi rankings rebuild"
            )
        empty = sorted((r.area_id, r.period_key, r.points) for r in done if r.members == 0)
        if empty:
            db.session.execute(_stmt("bucket:drop"), {"keys": empty})
    if inc:
        db.session.execute(
            _stmt("bucket:add"),
            [{"area_id": a, "period_key": k, "points": p, "members": 1} for a, k, p in sorted(inc)],
        )


# --- eligibility flags ----------------------------------------------------------------


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
    changes, in the same transaction. Inside ``atomic()`` it first takes the ledger
    head lock (lock order: head, rollups), so a concurrent posting either finished
    before (its rows are seen and fixed here) or starts after (it reads the new state).
    """
    from .ledger import lock_head

    ids = sorted(set(user_ids))
    if not ids:
        return 0
    if writing():
        lock_head()
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
    _move_buckets(inc, dec)
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


# --- rebuild and verify: recomputation from the ledger -----------------------------------

Totals = dict[tuple[int, str, int], list[Any]]  # key -> [points, minutes, reached_at]


@frozen
def _earners() -> sa.Select[Any]:
    t = LedgerTransaction
    return (
        sa.select(t.member_id)
        .where(t.kind == TransactionKind.EARN, t.member_id.is_not(None))
        .distinct()
        .order_by(t.member_id)
    )


def _earner_ids() -> list[int]:
    return [int(r[0]) for r in _earners.all()]


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])


@functools.cache
def _contribution_statement() -> sa.Select[Any]:
    """The earns statement of :func:`_contributions` (built once; ids are expanding)."""
    ids = sa.bindparam("ids", expanding=True)
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


def _area_paths_all() -> dict[int, str]:
    return {int(a): p for a, p in db.session.connection().execute(_AREA_PATHS)}


_AREA_PATHS = sa.select(Area.__table__.c.id, Area.__table__.c.path)


def _recompute(member_ids: list[int], teams: Totals, paths: dict[int, str]) -> Totals:
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

    Runs inside ``atomic()`` and takes the ledger head lock first, so no posting
    interleaves (lock order). Used by ``flask --app wsgi rankings rebuild``.
    """
    from .ledger import lock_head

    if not writing():
        raise RuntimeError("rankings.rebuild must run inside database.atomic()")
    lock_head()
    for table in (_rs, _rm, _rt):
        db.session.execute(table.delete())
    teams: Totals = {}
    n_members = 0
    paths = _area_paths_all()
    for chunk in _chunks(_earner_ids()):
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
            for (a, k, u), v in sorted(_recompute(chunk, teams, paths).items())
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
    return {"members": n_members, "teams": len(team_rows), "buckets": int(n_buckets)}


def _describe(kind: str, key: tuple[int, str, int], expected: Any, actual: Any) -> str:
    who = "project" if kind == "team" else "user"
    return (
        f"{kind} rollup area {key[0]} period {key[1]} {who} {key[2]}: "
        f"expected {_fmt(expected)}, found {_fmt(actual)}"
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "no row"
    flag = f" eligible={v[3]}" if len(v) > 3 else ""
    return f"points={v[0]} minutes={v[1]} reached_at={v[2].isoformat()}{flag}"


def _compare(kind: str, expected: Totals, actual: Totals) -> str | None:
    for key in sorted(set(expected) | set(actual)):
        e, a = expected.get(key), actual.get(key)
        if e is None or a is None or list(e) != list(a):
            return _describe(kind, key, e, a)
    return None


@functools.cache
def _stored_member_rows() -> sa.Select[Any]:
    return sa.select(_rm).where(_rm.c.user_id.in_(sa.bindparam("ids", expanding=True)))


@frozen_violation
def _stray_member_row() -> sa.Select[Any]:
    """The key of a member row of someone with no earn at all."""
    return (
        sa.select(_rm.c.area_id, _rm.c.period_key, _rm.c.user_id)
        .where(
            ~sa.exists().where(
                LedgerTransaction.member_id == _rm.c.user_id,
                LedgerTransaction.kind == TransactionKind.EARN,
            )
        )
        .order_by(_rm.c.area_id, _rm.c.period_key, _rm.c.user_id)
        .limit(1)
    )


def first_mismatch() -> str | None:
    """Return the first difference between the rollups and a fresh recomputation from
    the ledger (member rows, team rows, score buckets), or None if they agree.

    Runs after every step of the service state machine, so its statements are built
    once (``functools.cache``/``frozen``) and run on the session's connection."""
    db.session.flush()
    conn = db.session.connection()
    teams: Totals = {}
    earners = _earner_ids()
    paths = _area_paths_all()
    for chunk in _chunks(earners):
        expected = _recompute(chunk, teams, paths)
        actual: Totals = {
            (r.area_id, r.period_key, r.user_id): [
                int(r.points),
                int(r.minutes),
                r.reached_at,
                bool(r.eligible),
            ]
            for r in conn.execute(_stored_member_rows(), {"ids": chunk})
        }
        found = _compare("member", expected, actual)
        if found:
            return found
    stray = _stray_member_row.first()
    if stray is not None:
        found_row = conn.execute(
            sa.select(_rm.c.points, _rm.c.minutes, _rm.c.reached_at, _rm.c.eligible).where(
                _rm.c.area_id == stray[0], _rm.c.period_key == stray[1], _rm.c.user_id == stray[2]
            )
        ).one()
        return _describe("member", tuple(stray), None, list(found_row))
    actual_teams: Totals = {
        (r.area_id, r.period_key, r.project_id): [int(r.points), int(r.minutes), r.reached_at]
        for r in conn.execute(_stored_team_rows())
    }
    found = _compare("team", teams, actual_teams)
    if found:
        return found
    return _bucket_mismatch()


@functools.cache
def _stored_team_rows() -> sa.Select[Any]:
    return sa.select(_rt)


def _bucket_rows() -> tuple[sa.Select[Any], sa.Select[Any]]:
    grouped = (
        sa.select(_rm.c.area_id, _rm.c.period_key, _rm.c.points, sa.func.count().label("members"))
        .where(_rm.c.points > 0, _rm.c.eligible)
        .group_by(_rm.c.area_id, _rm.c.period_key, _rm.c.points)
    )
    stored = sa.select(_rs.c.area_id, _rs.c.period_key, _rs.c.points, _rs.c.members)
    return grouped, stored


def _first_difference(left: sa.Select[Any], right: sa.Select[Any]) -> sa.Select[Any]:
    diff = sa.except_(left, right).subquery()
    return sa.select(diff).order_by(*diff.c).limit(1)


# Exact: a bucket whose count reached 0 is deleted by the postings (_move_buckets) and
# never written by rebuild(), so a stored 0 is reported as extra.
_missing_bucket = frozen_violation(lambda: _first_difference(*_bucket_rows()))
_extra_bucket = frozen_violation(lambda: _first_difference(*reversed(_bucket_rows())))


def _bucket_mismatch() -> str | None:
    for query, counted in (
        (_missing_bucket, "counted from member rows"),
        (_extra_bucket, "stored"),
    ):
        row = query.first()
        if row is not None:
            return (
                f"score bucket area {row[0]} period {row[1]} points {row[2]}: "
                f"{row[3]} members {counted}, the other side disagrees"
            )
    return None


# --- settings (exposure) ---------------------------------------------------------------


@dataclass(frozen=True)
class ExposureSetting:
    mode: Exposure
    top_n: int | None = None
    gold_pct: int = 10
    silver_pct: int = 30
    bronze_pct: int = 60
    #: The area whose setting applies (None: the default, full list).
    area_id: int | None = None


def exposure_for(area: Area) -> ExposureSetting:
    """Return the setting that applies to ``area``: its own or its nearest ancestor's."""
    rows = _read("settings", {"path": area.path}).all()
    if rows:
        s = max(rows, key=lambda r: len(r.path))  # the deepest configured ancestor
        return ExposureSetting(
            Exposure(s.exposure), s.top_n, s.gold_pct, s.silver_pct, s.bronze_pct, s.area_id
        )
    return ExposureSetting(Exposure.FULL)


def set_exposure(
    actor: User | None,
    area: Area,
    mode: Exposure | str,
    *,
    top_n: int | None = None,
    gold_pct: int = 10,
    silver_pct: int = 30,
    bronze_pct: int = 60,
) -> RankingSettings:
    """Set how ``area``'s rankings are shown to residents and members. Audited.

    :raises Forbidden: unless the actor is the community's secretary, an officer over
        the area, or an admin (``actor=None`` is the CLI/demo).
    :raises ValidationFailed: unknown mode, ``top_n`` outside 1..1000, tiers not increasing.
    """
    if actor is not None:
        permissions.require(actor, "rankings.configure", area)
    try:
        mode = Exposure(mode)
    except ValueError:
        raise ValidationFailed(
            "Unknown exposure.", errors={"exposure": ["Use full, top_n or tiers."]}
        ) from None
    if mode == Exposure.TOP_N:
        if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= MAX_TOP_N:
            raise ValidationFailed(
                "N must be between 1 and 1000.", errors={"top_n": ["From 1 to 1000."]}
            )
    else:
        top_n = None
    if not 0 < gold_pct < silver_pct < bronze_pct <= 100:
        raise ValidationFailed(
            "Tier percentiles must increase: 0 < gold < silver < bronze <= 100.",
            errors={"tiers": ["0 < gold < silver < bronze <= 100."]},
        )
    setting = db.session.get(RankingSettings, area.id)
    if setting is None:
        setting = RankingSettings(area_id=area.id)
        db.session.add(setting)
    setting.exposure = mode
    setting.top_n = top_n
    setting.gold_pct, setting.silver_pct, setting.bronze_pct = gold_pct, silver_pct, bronze_pct
    setting.updated_by_id = actor.id if actor is not None else None
    setting.updated_at = utcnow()
    db.session.flush()
    audit.record(
        actor,
        "rankings.configure",
        "area",
        area.id,
        area_id=area.id,
        detail={
            "exposure": mode.value,
            "top_n": top_n,
            "tiers": [gold_pct, silver_pct, bronze_pct],
        },
    )
    return setting


# --- reading: member rankings --------------------------------------------------------------


@functools.cache
def _reads(dialect: str) -> dict[str, Any]:
    """Build the read statements once per dialect, with scalar bound parameters only.

    Excluded members' rows carry ``eligible`` False and are not in the score buckets,
    so a read needs no exclusion list: totals and ranks are bucket sums, and the page
    walks ``ix_ranking_members_top`` skipping the rare ineligible rows. Ancestors of an
    area come from the materialized path inside the statement (``:path LIKE path ||
    '%'``), never an expanding ``IN``. Plain Core on tables, so no ORM entity loading.
    """
    p = sa.bindparam
    areas, users, settings = Area.__table__, User.__table__, RankingSettings.__table__
    path = p("path", type_=sa.String)
    eligible = sa.and_(
        _rm.c.area_id == p("area_id"),
        _rm.c.period_key == p("period"),
        _rm.c.points > 0,
        _rm.c.eligible,
    )
    display_order = (_rm.c.points.desc(), _rm.c.reached_at, _rm.c.user_id)
    listed = (
        sa.select(
            _rm.c.user_id, _rm.c.points, _rm.c.minutes, _rm.c.reached_at, users.c.display_name
        )
        .select_from(_rm.join(users, users.c.id == _rm.c.user_id))
        .where(eligible, _rm.c.points >= p("floor"))
    )
    tier_order = sa.case((_rm.c.points >= p("gold"), 1), (_rm.c.points >= p("silver"), 2), else_=3)
    return {
        # Settings of the area and its ancestors (the table has a row per configured
        # area only); the deepest one applies.
        "settings": sa.select(
            areas.c.path,
            settings.c.area_id,
            settings.c.exposure,
            settings.c.top_n,
            settings.c.gold_pct,
            settings.c.silver_pct,
            settings.c.bronze_pct,
        )
        .select_from(settings.join(areas, areas.c.id == settings.c.area_id))
        .where(path.like(areas.c.path + "%")),
        "bucket_sum": sa.select(sa.func.coalesce(sa.func.sum(_rs.c.members), 0)).where(
            _rs.c.area_id == p("area_id"),
            _rs.c.period_key == p("period"),
            _rs.c.points > p("above"),
        ),
        "page": listed.order_by(*display_order).offset(p("offset")).limit(p("limit")),
        "tiers_page": listed.order_by(tier_order, users.c.display_name, _rm.c.user_id)
        .offset(p("offset"))
        .limit(p("limit")),
        "points_at": sa.select(_rm.c.points)
        .where(eligible)
        .order_by(*display_order)
        .offset(p("offset"))
        .limit(1),
        # My row and, in the same statement, the bucket sum above my points.
        "mine": sa.select(
            _rm.c.points,
            _rm.c.minutes,
            _rm.c.eligible,
            sa.select(sa.func.coalesce(sa.func.sum(_rs.c.members), 0))
            .where(
                _rs.c.area_id == _rm.c.area_id,
                _rs.c.period_key == _rm.c.period_key,
                _rs.c.points > _rm.c.points,
            )
            .scalar_subquery()
            .label("above"),
        ).where(
            _rm.c.area_id == p("area_id"),
            _rm.c.period_key == p("period"),
            _rm.c.user_id == p("user_id"),
        ),
    }


def _read(name: str, params: dict[str, Any]) -> sa.CursorResult:
    """Execute read statement ``name`` on the session's connection (Core, cached)."""
    conn = db.session.connection()
    return conn.execute(_reads(conn.dialect.name)[name], params)


def _bucket_sum(area_id: int, period: str, above: int) -> int:
    """Members of (area, period) with more than ``above`` points (from the buckets)."""
    return int(
        _read("bucket_sum", {"area_id": area_id, "period": period, "above": above}).scalar_one()
    )


@dataclass
class _Board:
    """The eligible members of (area, period): counts from the score buckets (which
    count eligible rows only), rows from ``ix_ranking_members_top``."""

    area_id: int
    period: str

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        return {"area_id": self.area_id, "period": self.period}

    def above(self, points: int) -> int:
        """Eligible members with more than ``points`` points."""
        return _bucket_sum(self.area_id, self.period, max(points, 0))

    def total(self) -> int:
        return self.above(0)

    def points_at(self, position: int) -> int | None:
        """Points of the eligible row at 1-based ``position`` in display order."""
        return _read("points_at", {**self.params, "offset": position - 1}).scalar()

    def page(self, floor: int, offset: int, limit: int, cutoffs: dict[str, int] | None):
        """Rows with at least ``floor`` points, in display order or (tiers) by tier
        then display name."""
        params = {**self.params, "floor": floor, "offset": offset, "limit": limit}
        if cutoffs:
            params.update(gold=cutoffs["gold"], silver=cutoffs["silver"])
            return _read("tiers_page", params).all()
        return _read("page", params).all()

    def mine(self, user_id: int) -> Any:
        return _read("mine", {**self.params, "user_id": user_id}).first()


def hours(minutes: int) -> float:
    """Return minutes as hours with one decimal."""
    return round(minutes / 60, 1)


def sees_full_list(viewer: User | None, area: Area) -> bool:
    """Secretaries and officers over the area (and admins) always see the full list."""
    return viewer is not None and permissions.may(viewer, "rankings.full_list", area)


def _tier(points: int, cutoffs: dict[str, int]) -> str | None:
    for name in TIER_NAMES:
        if name in cutoffs and points >= cutoffs[name]:
            return name
    return None


def ranking(
    area: Area,
    period: str = "all",
    page: int = 1,
    per_page: int = 20,
    viewer: User | None = None,
) -> dict[str, Any]:
    """Return one page of the member ranking of ``area`` (its subtree) in ``period``.

    ``{area, period, items: [{rank, user_id, display_name, points, hours, tier}], me,
    page, per_page, total, exposure}``. Ranks are standard competition ranks among
    eligible members; ties are listed by who reached the total first, then user id.
    ``me`` is the viewer's ``{rank, points, hours, tier}`` (None without points there).
    Reads rollups only (never the ledger).

    :raises ValidationFailed: bad period or paging.
    """
    period = parse_period(period)
    page, per_page = _paging(page, per_page)
    board = _Board(area.id, period)
    setting = exposure_for(area)
    mode = Exposure.FULL if sees_full_list(viewer, area) else setting.mode
    total = board.total()

    cutoffs: dict[str, int] = {}
    visible_floor = 1  # rows with points >= floor are listed
    if mode == Exposure.TOP_N and setting.top_n is not None and total > setting.top_n:
        visible_floor = board.points_at(setting.top_n) or 1
    elif mode == Exposure.TIERS and total:
        for name, pct in zip(
            TIER_NAMES, (setting.gold_pct, setting.silver_pct, setting.bronze_pct), strict=True
        ):
            position = max(1, math.ceil(total * pct / 100))
            cutoffs[name] = board.points_at(position) or 1
        visible_floor = cutoffs["bronze"]
    visible = board.above(visible_floor - 1) if visible_floor > 1 else total

    offset = (page - 1) * per_page
    items: list[dict[str, Any]] = []
    if offset < visible:
        rows = board.page(
            visible_floor, offset, per_page, cutoffs if mode == Exposure.TIERS else None
        )
        if mode == Exposure.TIERS:
            items = [
                {
                    "rank": None,
                    "user_id": r.user_id,
                    "display_name": r.display_name,
                    "points": None,
                    "hours": None,
                    "tier": _tier(int(r.points), cutoffs),
                }
                for r in rows
            ]
        else:
            items = _ranked(rows, offset, board)

    me = None
    if viewer is not None:
        mine = board.mine(viewer.id)
        if mine is not None and mine.points > 0 and mine.eligible:
            me = {
                "rank": 1 + int(mine.above),
                "points": int(mine.points),
                "hours": hours(int(mine.minutes)),
                "tier": _tier(int(mine.points), cutoffs) if mode == Exposure.TIERS else None,
            }
    if viewer is not None:
        for item in items:
            item["is_me"] = item["user_id"] == viewer.id
    return {
        "area": area,
        "period": period,
        "items": items,
        "me": me,
        "page": page,
        "per_page": per_page,
        "total": visible,
        "exposure": {
            "mode": mode.value,
            "configured": setting.mode.value,
            "top_n": setting.top_n if setting.mode == Exposure.TOP_N else None,
            "tiers": (
                {
                    "gold": setting.gold_pct,
                    "silver": setting.silver_pct,
                    "bronze": setting.bronze_pct,
                }
                if setting.mode == Exposure.TIERS
                else None
            ),
        },
    }


def _ranked(rows: Sequence[Any], offset: int, board: _Board | None) -> list[dict[str, Any]]:
    """Attach competition ranks to rows in display order starting at ``offset``."""
    items: list[dict[str, Any]] = []
    prev_points: int | None = None
    rank = 0
    for i, r in enumerate(rows):
        points = int(r.points)
        if points != prev_points:
            if i == 0 and offset > 0:
                rank = 1 + (board.above(points) if board is not None else 0)
            else:
                rank = offset + i + 1
        prev_points = points
        items.append(
            {
                "rank": rank,
                "user_id": r.user_id,
                "display_name": r.display_name,
                "points": points,
                "hours": hours(int(r.minutes)),
                "tier": None,
            }
        )
    return items


def _paging(page: int, per_page: int) -> tuple[int, int]:
    errors: dict[str, list[str]] = {}
    if isinstance(page, bool) or not isinstance(page, int) or page < 1 or page > 1_000_000:
        errors["page"] = ["From 1."]
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int)
        or not 1 <= per_page <= MAX_PER_PAGE
    ):
        errors["per_page"] = [f"From 1 to {MAX_PER_PAGE}."]
    if errors:
        raise ValidationFailed("Bad paging.", errors=errors)
    return page, per_page


def get_area(area_id: int) -> Area:
    """Return the area or raise :class:`NotFound`."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound("Area not found.")
    return area


def default_area(user: User) -> Area | None:
    """Return the area a user's leaderboard opens on: their first community."""
    ids = sorted(permissions.user_communities(user))
    if ids:
        return db.session.get(Area, ids[0])
    areas = permissions.grant_areas(user, [r for r in Role if r != Role.ADMIN])
    if areas:
        return min(areas, key=lambda a: (a.depth, a.id))
    # No area of their own (an admin): the first district.
    return db.session.scalars(
        sa.select(Area).where(Area.parent_id.is_(None)).order_by(Area.id).limit(1)
    ).first()


def scope_choices(user: User) -> list[Area]:
    """Return the areas offered in the leaderboard's scope picker: the user's grant
    areas and their ancestors (grid, community, street, district), plus the
    communities under an officer's areas."""
    ids: set[int] = set()
    officer_paths: list[str] = []
    for area in permissions.grant_areas(user, [r for r in Role if r != Role.ADMIN]):
        ids.update(area.ancestor_ids())
    for area in permissions.grant_areas(user, [Role.OFFICER]):
        officer_paths.append(area.path)
    if permissions.is_admin(user):
        ids.update(db.session.scalars(sa.select(Area.id).where(Area.parent_id.is_(None))))
        officer_paths.append("/")
    stmt = sa.select(Area).where(Area.id.in_(ids))
    if officer_paths:
        stmt = sa.select(Area).where(
            sa.or_(
                Area.id.in_(ids),
                sa.and_(
                    Area.kind.in_([AreaKind.STREET, AreaKind.COMMUNITY]),
                    sa.or_(*[Area.path.startswith(p, autoescape=True) for p in officer_paths]),
                ),
            )
        )
    return list(db.session.scalars(stmt.order_by(Area.path)))


def monthly_points(
    user: User | int, months: int = 12, tz: str = DEFAULT_TIMEZONE, now: datetime | None = None
) -> list[tuple[str, int]]:
    """Return ``[("2025-12", points), ...]`` for the last ``months`` months, oldest first,
    from the member's month rollups at the top of the tree (every district summed)."""
    user_id = user if isinstance(user, int) else user.id
    labels = recent_months(months, tz, now)
    roots = sa.select(Area.id).where(Area.parent_id.is_(None))
    rows = dict(
        db.session.execute(
            sa.select(_rm.c.period_key, sa.func.sum(_rm.c.points))
            .where(
                _rm.c.user_id == user_id,
                _rm.c.period_key.in_(labels),
                _rm.c.area_id.in_(roots),
            )
            .group_by(_rm.c.period_key)
        ).all()
    )
    return [(label, int(rows.get(label) or 0)) for label in labels]


# --- reading: teams and communities (officers; secretaries for their community) ----------


def team_ranking(
    actor: User, area: Area, period: str = "all", page: int = 1, per_page: int = 20
) -> dict[str, Any]:
    """Return one page of the team (project) ranking of ``area`` in ``period``.

    ``{items: [{rank, project_id, title, community_id, points, hours}], page, per_page,
    total}``; ties by who reached the total first, then project id.

    :raises Forbidden: not an officer over the area, its community's secretary or admin.
    :raises ValidationFailed: bad period or paging.
    """
    permissions.require(actor, "rankings.teams", area)
    period = parse_period(period)
    page, per_page = _paging(page, per_page)
    where = sa.and_(_rt.c.area_id == area.id, _rt.c.period_key == period, _rt.c.points > 0)
    total = int(db.session.scalar(sa.select(sa.func.count()).select_from(_rt).where(where)) or 0)
    offset = (page - 1) * per_page
    rows = db.session.execute(
        sa.select(
            _rt.c.project_id,
            _rt.c.points,
            _rt.c.minutes,
            Project.title,
            Project.community_id,
        )
        .join(Project, Project.id == _rt.c.project_id)
        .where(where)
        .order_by(_rt.c.points.desc(), _rt.c.reached_at, _rt.c.project_id)
        .offset(offset)
        .limit(per_page)
    ).all()
    items: list[dict[str, Any]] = []
    prev: int | None = None
    rank = 0
    for i, r in enumerate(rows):
        points = int(r.points)
        if points != prev:
            if i == 0 and offset > 0:
                rank = 1 + int(
                    db.session.scalar(
                        sa.select(sa.func.count())
                        .select_from(_rt)
                        .where(where, _rt.c.points > points)
                    )
                    or 0
                )
            else:
                rank = offset + i + 1
        prev = points
        items.append(
            {
                "rank": rank,
                "project_id": r.project_id,
                "title": r.title,
                "community_id": r.community_id,
                "points": points,
                "hours": hours(int(r.minutes)),
            }
        )
    return {
        "area": area,
        "period": period,
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
    }


def community_table(
    actor: User, area: Area, period: str = "all", page: int = 1, per_page: int = 20
) -> dict[str, Any]:
    """Return per-community figures of ``area``'s subtree in ``period``: members (active
    member grants now), active members (eligible, with points in the period), their
    points and hours, per active member, and the share of members active.

    Cost: one grouped pass over the communities' eligible rollup rows and member
    grants (bounded by members, never by the ledger).

    :raises Forbidden: not an officer over the area, its secretary or admin.
    :raises ValidationFailed: bad period or paging; a grid (choose its community).
    """
    permissions.require(actor, "rankings.communities", area)
    period = parse_period(period)
    page, per_page = _paging(page, per_page)
    if area.kind == AreaKind.GRID:
        raise ValidationFailed(
            "Choose a community, street or district.", errors={"area_id": ["Not a grid."]}
        )
    communities = list(
        db.session.scalars(
            sa.select(Area)
            .where(
                Area.kind == AreaKind.COMMUNITY, Area.path.startswith(area.path, autoescape=True)
            )
            .order_by(Area.path)
        )
    )
    ids = [c.id for c in communities]
    community_of = sa.case((Area.kind == AreaKind.GRID, Area.parent_id), else_=Area.id)
    members = (
        dict(
            db.session.execute(
                sa.select(community_of, sa.func.count(sa.distinct(RoleGrant.user_id)))
                .select_from(RoleGrant)
                .join(Area, Area.id == RoleGrant.area_id)
                .join(User, User.id == RoleGrant.user_id)
                .where(
                    RoleGrant.role == Role.MEMBER,
                    RoleGrant.revoked_at.is_(None),
                    User.is_active == sa.true(),
                    Area.path.startswith(area.path, autoescape=True),
                )
                .group_by(community_of)
            ).all()
        )
        if ids
        else {}
    )
    sums = (
        {
            r.area_id: r
            for r in db.session.execute(
                sa.select(
                    _rm.c.area_id,
                    sa.func.count().label("n"),
                    sa.func.sum(_rm.c.points).label("points"),
                    sa.func.sum(_rm.c.minutes).label("minutes"),
                )
                .where(
                    _rm.c.area_id.in_(ids),
                    _rm.c.period_key == period,
                    _rm.c.points > 0,
                    _rm.c.eligible,
                )
                .group_by(_rm.c.area_id)
            )
        }
        if ids
        else {}
    )
    rows: list[dict[str, Any]] = []
    for c in communities:
        s = sums.get(c.id)
        active, points, minutes = (int(s.n), int(s.points), int(s.minutes)) if s else (0, 0, 0)
        n_members = int(members.get(c.id, 0))
        rows.append(
            {
                "community_id": c.id,
                "name": c.name,
                "members": n_members,
                "active_members": active,
                "participation_rate": round(active / n_members, 4) if n_members else 0.0,
                "points": points,
                "hours": hours(minutes),
                "points_per_active_member": round(points / active, 1) if active else 0.0,
                "hours_per_active_member": round(minutes / 60 / active, 1) if active else 0.0,
            }
        )
    rows.sort(key=lambda r: (-r["points"], r["community_id"]))
    offset = (page - 1) * per_page
    return {
        "area": area,
        "period": period,
        "items": rows[offset : offset + per_page],
        "page": page,
        "per_page": per_page,
        "total": len(rows),
    }
