"""The posting hook: what an earn or a reversal adds to the ranking rollups.

:func:`apply_posting` runs from the ledger's posting hook (``services.ledger.posting``)
inside every posting, after the head and account locks; :func:`contribution_of` says
what the posting adds (areas, periods, grids, team), :func:`apply` writes the member
rows, the score buckets they move between (:func:`move_buckets`) and the team rows.
This module imports nothing of the ledger package (the ledger imports it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from ...extensions import db
from ...models import (
    AccountKind,
    Area,
    AreaKind,
    Delivery,
    LedgerAccount,
    LedgerTransaction,
    TransactionKind,
    UTCDateTime,
)
from ...models.rankings import RankingMember, RankingScoreCount, RankingTeam
from .members import MemberState, area_paths, member_states
from .periods import period_keys

_rm = cast(sa.Table, RankingMember.__table__)
_rs = cast(sa.Table, RankingScoreCount.__table__)
_rt = cast(sa.Table, RankingTeam.__table__)


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


_EARN_OF = sa.select(LedgerTransaction.kind, LedgerTransaction.created_at).where(
    LedgerTransaction.id == sa.bindparam("tx_id")
)
_PROJECT_OF = sa.select(Delivery.project_id).where(Delivery.id == sa.bindparam("delivery_id"))


def contribution_of(
    tx: LedgerTransaction, legs: Sequence[tuple[LedgerAccount, int]]
) -> Contribution | None:
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
            a for a, path in area_paths(community, grids).items() if not state.eligible_in(path)
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
        defer_buckets(inc, dec)
    if c.project_id is not None:
        team_keys = [(a, k, c.project_id) for a in sorted(c.area_ids) for k in keys]
        _add_or_subtract("team", team_keys, c)


_ROLLUPS = {"member": (_rm, "user_id"), "team": (_rt, "project_id")}


def _insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """A dialect INSERT of ``table`` that supports ``on_conflict_do_update``."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


@functools.cache
def _statement(dialect: str, name: str) -> Any:
    """Return the rollup write statement ``name`` for ``dialect`` (built once; bound
    parameters only, so its compiled form is cached)."""
    kind, _, op = name.partition(":")
    if kind == "bucket":
        cols = _rs.c
        key = sa.tuple_(cols.area_id, cols.period_key, cols.points)
        if op == "add":
            ins = _insert(dialect, _rs)
            return ins.on_conflict_do_update(
                index_elements=[cols.area_id, cols.period_key, cols.points],
                set_={"members": cols.members + ins.excluded.members},
            )
        if op == "lock_add":  # flush_pending step 1: add the gains, lock every bucket
            ins = _insert(dialect, _rs)
            return ins.on_conflict_do_update(
                index_elements=[cols.area_id, cols.period_key, cols.points],
                set_={"members": cols.members + ins.excluded.members},
            ).returning(cols.area_id, cols.period_key, cols.points, cols.members)
        if op == "sub":
            return (
                _rs.update()
                .where(key.in_(sa.bindparam("keys", expanding=True)))
                .values(members=cols.members - 1)
                .returning(cols.area_id, cols.period_key, cols.points, cols.members)
            )
        if op == "sub_n":  # flush_pending step 2
            return (
                _rs.update()
                .where(key.in_(sa.bindparam("keys", expanding=True)))
                .values(members=cols.members - sa.bindparam("n", type_=sa.Integer()))
                .returning(cols.area_id, cols.period_key, cols.points, cols.members)
            )
        # "drop": buckets whose count reached 0 are deleted, as rebuild() never has them.
        return _rs.delete().where(key.in_(sa.bindparam("keys", expanding=True)), cols.members == 0)
    table, owner = _ROLLUPS[kind]
    cols = table.c
    if op == "add":
        ins = _insert(dialect, table)
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
    row keeps its flag (kept current by ``eligibility.refresh_eligibility``)."""
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


def move_buckets(inc: list[tuple[int, str, int]], dec: list[tuple[int, str, int]]) -> None:
    """Count one member more at each ``inc`` bucket and one fewer at each ``dec``;
    a bucket whose count reaches 0 is deleted (like ``rebuild.rebuild``, which only
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


# --- deferred score buckets ---------------------------------------------------------
#
# A score bucket (``ranking_score_counts``: area x period x points) is shared by every
# member of the area -- a street or district bucket by members of several communities,
# whose postings no longer share one lock. Moving buckets inside each posting would
# lock them in posting order, and two transactions of different communities (say two
# settlements of several participants) could lock two buckets in opposite orders: a
# PostgreSQL deadlock. So a posting only *records* its bucket moves in the session
# (:func:`defer_buckets`); they are netted and written when the transaction commits
# (``before_commit``: :func:`flush_pending`), in ascending key order, after every other
# lock of the transaction -- one deterministic order, the last step of the lock order.
# A savepoint that rolls back drops the moves recorded since it began (its postings
# are gone; :func:`_drop_on_rollback`), a rollback drops them all. Readers of the buckets inside a write transaction call
# :func:`flush_pending` first (eligibility refresh, rebuild, ``ledger verify``).

_PENDING = "rankings.pending_buckets"


def _pending(session: Any) -> list[tuple[tuple[int, str, int], int]]:
    return cast(list[tuple[tuple[int, str, int], int]], session.info.setdefault(_PENDING, []))


def defer_buckets(inc: list[tuple[int, str, int]], dec: list[tuple[int, str, int]]) -> None:
    """Record one member more at each ``inc`` bucket and one fewer at each ``dec``,
    written at commit (:func:`flush_pending`)."""
    pending = _pending(db.session())
    pending.extend((key, 1) for key in inc)
    pending.extend((key, -1) for key in dec)


def pending_mark() -> int:
    """The current length of the deferred moves (to reset a rolled-back savepoint)."""
    return len(db.session.info.get(_PENDING, ()))


def pending_reset(mark: int) -> None:
    """Drop the deferred moves recorded since ``mark``."""
    pending = db.session.info.get(_PENDING)
    if pending is not None:
        del pending[mark:]


def flush_pending(session: Any = None) -> None:
    """Write the deferred bucket moves, netted per bucket, in ascending key order.

    Three statements whatever the number of buckets (there were one per bucket):

    1. one multi-row ``INSERT .. ON CONFLICT DO UPDATE`` over *every* moved bucket in
       ascending key order: a bucket that gains members gets them
       (``members + n``), one that loses members is only locked (``members + 0``:
       a CHECK refuses a negative proposed row, so the loss cannot ride here);
       ``RETURNING`` gives each bucket's count. PostgreSQL takes the row locks (or
       the new rows' unique-index entries) in the order of the ``VALUES``, so every
       transaction still locks buckets in one global order (no deadlock);
    2. one ``UPDATE`` per distinct loss (almost always one: ``- 1``) of the buckets,
       all locked by step 1 now;
    3. one ``DELETE`` of the buckets left at 0 (as ``rebuild`` never writes them).

    A bucket that should lose members but did not exist (step 1 created it with 0) is
    :class:`RollupsOutOfSync`, and the transaction rolls back with the row.
    """
    session = session if session is not None else db.session()
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    net: dict[tuple[int, str, int], int] = {}
    for key, delta in pending:
        net[key] = net.get(key, 0) + delta
    moved = sorted(key for key, n in net.items() if n != 0)
    if not moved:
        return
    dialect = session.get_bind().dialect.name
    counts = {
        (r.area_id, r.period_key, r.points): int(r.members)
        for r in session.execute(
            _statement(dialect, "bucket:lock_add"),
            [
                {"area_id": a, "period_key": k, "points": p, "members": max(net[(a, k, p)], 0)}
                for a, k, p in moved
            ],
        )
    }
    losses: dict[int, list[tuple[int, str, int]]] = {}
    for key in moved:
        n = net[key]
        if n < 0:
            if counts.get(key, 0) < -n:
                raise RollupsOutOfSync(
                    "ranking_score_counts: a bucket is missing;"
                    " run: flask --app wsgi rankings rebuild"
                )
            losses.setdefault(-n, []).append(key)
    empty: list[tuple[int, str, int]] = []
    for n, keys in sorted(losses.items()):
        empty.extend(
            (r.area_id, r.period_key, r.points)
            for r in session.execute(_statement(dialect, "bucket:sub_n"), {"n": n, "keys": keys})
            if int(r.members) == 0
        )
    if empty:
        session.execute(_statement(dialect, "bucket:drop"), {"keys": sorted(empty)})


@event.listens_for(Session, "before_commit")
def _flush_before_commit(session: Session) -> None:
    # SQLAlchemy sends before_commit for a savepoint's release too: the buckets wait for
    # the outermost commit, or a transaction of several postings (a settlement of
    # several participants) would lock them posting by posting, not in one key order
    # (tests/ledger/test_lean_posting.py: a PostgreSQL deadlock before).
    if session.info.get(_PENDING) and session.get_nested_transaction() is None:
        flush_pending(session)


_MARKS = "rankings.pending_marks"


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: Any) -> None:
    """Remember how many moves were deferred when a savepoint began."""
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_PENDING, ()))


@event.listens_for(Session, "after_transaction_end")
def _forget_savepoint(session: Session, transaction: Any) -> None:
    marks = session.info.get(_MARKS)
    if marks:
        marks.pop(transaction, None)


@event.listens_for(Session, "after_rollback")
def _drop_on_rollback(session: Session) -> None:
    """A rolled-back savepoint drops the moves deferred since it began (its postings are
    gone; those before it stay); a rollback of the whole transaction drops them all."""
    savepoint = session.get_nested_transaction()  # the one rolling back, if any
    if savepoint is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)
        return
    mark = session.info.get(_MARKS, {}).get(savepoint)
    pending = session.info.get(_PENDING)
    if mark is not None and pending is not None:
        del pending[mark:]
