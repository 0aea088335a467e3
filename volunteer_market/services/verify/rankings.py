"""The ``ranking_rollups`` check: the stored rollups equal a fresh recomputation.

Member rows, team rows and score buckets are compared with what
``services.rankings.rebuild`` recomputes from the ledger (the recomputation stays with
the rankings; the comparison lives here). :func:`first_mismatch` describes the first
difference.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import sqlalchemy as sa

from ...extensions import db
from ...models import LedgerTransaction, TransactionKind
from ...models.rankings import RankingMember, RankingScoreCount, RankingTeam
from ..rankings.rebuild import Totals, area_paths_all, chunks, earners_statement, recompute
from .frozen import frozen, frozen_violation
from .registry import Violation

_rm = cast(sa.Table, RankingMember.__table__)
_rs = cast(sa.Table, RankingScoreCount.__table__)
_rt = cast(sa.Table, RankingTeam.__table__)

#: The members with an earn, as a constant statement compiled once (it runs after every
#: step of the service state machine).
_earners = frozen(earners_statement)


def _earner_ids() -> list[int]:
    return [int(r[0]) for r in _earners.all()]


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
def _stored_member_rows() -> sa.Select[*tuple[Any, ...]]:
    return sa.select(_rm).where(_rm.c.user_id.in_(sa.bindparam("ids", expanding=True)))


@frozen_violation
def _stray_member_row() -> sa.Select[*tuple[Any, ...]]:
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
    paths = area_paths_all()
    for chunk in chunks(earners):
        expected = recompute(chunk, teams, paths)
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
def _stored_team_rows() -> sa.Select[*tuple[Any, ...]]:
    return sa.select(_rt)


def _bucket_rows() -> tuple[sa.Select[*tuple[Any, ...]], sa.Select[*tuple[Any, ...]]]:
    grouped = (
        sa.select(_rm.c.area_id, _rm.c.period_key, _rm.c.points, sa.func.count().label("members"))
        .where(_rm.c.points > 0, _rm.c.eligible)
        .group_by(_rm.c.area_id, _rm.c.period_key, _rm.c.points)
    )
    stored = sa.select(_rs.c.area_id, _rs.c.period_key, _rs.c.points, _rs.c.members)
    return grouped, stored


def _first_difference(
    left: sa.Select[*tuple[Any, ...]], right: sa.Select[*tuple[Any, ...]]
) -> sa.Select[*tuple[Any, ...]]:
    diff = sa.except_(left, right).subquery()
    return sa.select(diff).order_by(*diff.c).limit(1)


# Exact: a bucket whose count reached 0 is deleted by the postings (move_buckets) and
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


def check_ranking_rollups() -> Violation | None:
    """Ranking rollups (member, team, score buckets) equal a fresh recomputation."""
    found = first_mismatch()
    if found is None:
        return None
    return Violation("ranking_rollups", f"{found} (run: flask --app wsgi rankings rebuild)")
