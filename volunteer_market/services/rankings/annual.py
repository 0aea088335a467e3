"""The posting hook of the annual report: yearly rollups the ranking rows do not hold.

:func:`apply_posting` runs from the ledger's posting hook (``services.ledger.posting``)
inside every posting, after the head and account locks, next to the ranking rollups.
Per (community, year, member) it keeps (``models.evaluations.AnnualStat``):

* ``deliveries``, ``ratings_count``, ``score_sum``: an earn adds one delivery and the
  ratings of its settlement (``settlements.ratings_count``, ``score_sum``); a reversal of
  an earn subtracts them in the earn's year (as the ranking rollups subtract points in
  the earn's periods);
* ``points_spent``: a ``redeem`` (a redemption fulfilled) adds the points it moved out of
  the held account;
* ``points_expired``: an ``expire`` adds what it took from the wallet; its reversal
  subtracts it in the expiry's year.

and per (community, year, member, project) the deliveries earned in
(``AnnualProject``), from which projects led and joined are counted. The year is the
posting's (the reversed posting's) in the community's time zone. Points earned and
hours are the ranking rollups' (period ``YYYY``). This module imports nothing of the
ledger package (the ledger imports it).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import identity_key

from ...extensions import db
from ...models import (
    AccountKind,
    Area,
    Delivery,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Settlement,
    TransactionKind,
    UTCDateTime,
)
from ...models.evaluations import AnnualProject, AnnualStat
from ...zones import zone
from .rollups import _insert

_as = cast(sa.Table, AnnualStat.__table__)
_ap = cast(sa.Table, AnnualProject.__table__)

_ORIGINAL = sa.select(
    LedgerTransaction.kind,
    LedgerTransaction.created_at,
    LedgerTransaction.delivery_id,
    LedgerTransaction.minutes,
).where(LedgerTransaction.id == sa.bindparam("tx_id"))
_RATINGS = sa.select(Settlement.ratings_count, Settlement.score_sum).where(
    Settlement.delivery_id == sa.bindparam("delivery_id")
)
_PROJECT = sa.select(Delivery.project_id).where(Delivery.id == sa.bindparam("delivery_id"))


def year_of(moment: datetime, timezone: str) -> int:
    """Return the calendar year of ``moment`` in ``timezone``."""
    return moment.astimezone(zone(timezone)).year


def _leg(legs: Sequence[tuple[LedgerAccount, int]], kind: AccountKind) -> int:
    return sum(amount for account, amount in legs if account.kind == kind)


def _settlement_counts(delivery_id: int) -> tuple[int, int] | None:
    """``(ratings_count, score_sum)`` of the delivery's settlement, or None.

    A settlement posting its earns has the row in the session (settlement rows are never
    changed once written): no query then."""
    for obj in db.session.identity_map.values():
        if isinstance(obj, Settlement) and obj.__dict__.get("delivery_id") == delivery_id:
            known = obj.__dict__
            if "ratings_count" in known and "score_sum" in known:
                return int(known["ratings_count"]), int(known["score_sum"])
    row = db.session.execute(_RATINGS, {"delivery_id": delivery_id}).first()
    return (int(row.ratings_count), int(row.score_sum)) if row is not None else None


def _project_of(delivery_id: int) -> int | None:
    """The delivery's project (from the session when the delivery is loaded)."""
    loaded = db.session.identity_map.get(identity_key(Delivery, delivery_id))
    if loaded is not None and "project_id" in loaded.__dict__:
        return cast(int, loaded.__dict__["project_id"])
    return db.session.execute(_PROJECT, {"delivery_id": delivery_id}).scalar_one_or_none()


def apply_posting(tx: LedgerTransaction, legs: Sequence[tuple[LedgerAccount, int]]) -> None:
    """Maintain the annual rollups for one posting (same transaction; flushes only)."""
    if tx.member_id is None or tx.community_id is None:
        return
    sign = 1
    kind, at, delivery_id = tx.kind, tx.created_at, tx.delivery_id
    if tx.kind == TransactionKind.REVERSE and tx.reverses_id is not None:
        original = db.session.execute(_ORIGINAL, {"tx_id": tx.reverses_id}).one()
        sign, kind, at, delivery_id = -1, original.kind, original.created_at, original.delivery_id
    if kind not in (TransactionKind.EARN, TransactionKind.REDEEM, TransactionKind.EXPIRE):
        return
    community = db.session.get(Area, tx.community_id)
    if community is None:
        return
    key = {
        "community_id": community.id,
        "year": year_of(at, community.timezone),
        "user_id": tx.member_id,
    }
    delta = {"deliveries": 0, "ratings_count": 0, "score_sum": 0}
    delta |= {"points_spent": 0, "points_expired": 0}
    project_id = None
    if kind == TransactionKind.EARN:
        delta["deliveries"] = sign
        if delivery_id is not None:
            ratings = _settlement_counts(delivery_id)
            if ratings is not None:
                delta["ratings_count"] = sign * ratings[0]
                delta["score_sum"] = sign * ratings[1]
            project_id = _project_of(delivery_id)
    elif kind == TransactionKind.REDEEM:
        # A redeem moves points out of the held account (a negative leg).
        delta["points_spent"] = -_leg(legs, AccountKind.MEMBER_HELD)
    else:
        # An expiry takes from the wallet; its reversal gives back (both legs negated).
        delta["points_expired"] = -_leg(legs, AccountKind.MEMBER_AVAILABLE)
    if min(delta.values()) >= 0:
        db.session.execute(_stmt("stat:add"), {**key, **delta})
        if project_id is not None:
            db.session.execute(
                _stmt("project:add"), {**key, "project_id": project_id, "deliveries": 1}
            )
        return
    db.session.execute(_stmt("stat:sub"), _prefixed(key, delta))
    if project_id is not None:
        db.session.execute(
            _stmt("project:sub"), _prefixed({**key, "project_id": project_id}, {"deliveries": -1})
        )


def _prefixed(key: dict[str, int], delta: dict[str, int]) -> dict[str, int]:
    return {**{f"k_{k}": v for k, v in key.items()}, **{f"d_{k}": v for k, v in delta.items()}}


@functools.cache
def _statement(dialect: str, name: str) -> Any:
    """Add the deltas: ``INSERT .. ON CONFLICT DO UPDATE`` (``add``), or an ``UPDATE`` of
    the row the earn created (``sub``: a CHECK would refuse a negative proposed row).
    Built once per dialect, bound parameters only."""
    kind, _, op = name.partition(":")
    table, keys, values = (
        (_as, ["community_id", "year", "user_id"], list(_STAT_VALUES))
        if kind == "stat"
        else (_ap, ["community_id", "year", "user_id", "project_id"], ["deliveries"])
    )
    if op == "sub":
        return (
            table.update()
            .where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in keys])
            .values({v: table.c[v] + sa.bindparam(f"d_{v}", type_=sa.Integer()) for v in values})
        )
    ins = _insert(dialect, table)
    return ins.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={v: table.c[v] + ins.excluded[v] for v in values},
    )


_STAT_VALUES = ("deliveries", "ratings_count", "score_sum", "points_spent", "points_expired")


def _stmt(name: str) -> Any:
    return _statement(db.session.get_bind().dialect.name, name)


def recompute_annual() -> tuple[dict[tuple[int, int, int], list[int]], dict[tuple, int]]:
    """Return the annual rollups recomputed from the ledger (settlements for ratings,
    deliveries for projects): ``({(community, year, user): [deliveries, ratings_count,
    score_sum, spent, expired]}, {(community, year, user, project): deliveries})``."""
    t = aliased(LedgerTransaction)
    orig = aliased(LedgerTransaction)
    kind = sa.case((t.kind == TransactionKind.REVERSE, orig.kind), else_=t.kind)
    at = sa.case((t.kind == TransactionKind.REVERSE, orig.created_at), else_=t.created_at)
    delivery_id = sa.case(
        (t.kind == TransactionKind.REVERSE, orig.delivery_id), else_=t.delivery_id
    )
    held = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).join(
        LedgerAccount, LedgerAccount.id == LedgerEntry.account_id
    )
    stmt = (
        sa.select(
            t.id,
            t.kind.label("own_kind"),
            kind.label("kind"),
            sa.type_coerce(at, UTCDateTime()).label("at"),
            t.member_id,
            Area.id.label("community_id"),
            Area.timezone,
            Settlement.ratings_count,
            Settlement.score_sum,
            Delivery.project_id,
            # only redemptions and expiries (and their reversals: ``kind`` is the
            # original's) need their amounts: the CASE keeps the correlated sums from
            # running for every earn (95 % of the rows)
            sa.case(
                (
                    kind == TransactionKind.REDEEM,
                    held.where(
                        LedgerEntry.transaction_id == t.id,
                        LedgerAccount.kind == AccountKind.MEMBER_HELD,
                    ).scalar_subquery(),
                ),
                else_=0,
            ).label("held"),
            sa.case(
                (
                    kind == TransactionKind.EXPIRE,
                    held.where(
                        LedgerEntry.transaction_id == t.id,
                        LedgerAccount.kind == AccountKind.MEMBER_AVAILABLE,
                    ).scalar_subquery(),
                ),
                else_=0,
            ).label("available"),
        )
        .join(Area, Area.id == t.community_id)
        .outerjoin(orig, orig.id == t.reverses_id)
        .outerjoin(Settlement, Settlement.delivery_id == delivery_id)
        .outerjoin(Delivery, Delivery.id == delivery_id)
        .where(
            t.member_id.is_not(None),
            t.kind.in_(
                [
                    TransactionKind.EARN,
                    TransactionKind.REDEEM,
                    TransactionKind.EXPIRE,
                    TransactionKind.REVERSE,
                ]
            ),
        )
        .order_by(t.id)
    )
    stats: dict[tuple[int, int, int], list[int]] = {}
    projects: dict[tuple, int] = {}
    for r in db.session.execute(stmt):
        if r.kind not in (TransactionKind.EARN, TransactionKind.REDEEM, TransactionKind.EXPIRE):
            continue
        key = (int(r.community_id), year_of(r.at, r.timezone), int(r.member_id))
        row = stats.setdefault(key, [0, 0, 0, 0, 0])
        sign = -1 if r.own_kind == TransactionKind.REVERSE else 1
        if r.kind == TransactionKind.EARN:
            row[0] += sign
            row[1] += sign * int(r.ratings_count or 0)
            row[2] += sign * int(r.score_sum or 0)
            if r.project_id is not None:
                pkey = (*key, int(r.project_id))
                projects[pkey] = projects.get(pkey, 0) + sign
        elif r.kind == TransactionKind.REDEEM:
            row[3] -= int(r.held)
        else:
            row[4] -= int(r.available)
    return stats, projects


def rebuild_annual() -> dict[str, int]:
    """Replace the annual rollups by :func:`recompute_annual` (inside ``atomic()``, after
    every head lock: ``rankings.rebuild`` calls it); return row counts."""
    db.session.execute(_as.delete())
    db.session.execute(_ap.delete())
    stats, projects = recompute_annual()
    rows = [
        {"community_id": c, "year": y, "user_id": u, **dict(zip(_STAT_VALUES, v, strict=True))}
        for (c, y, u), v in sorted(stats.items())
    ]
    if rows:
        db.session.execute(_as.insert(), rows)
    prows = [
        {"community_id": c, "year": y, "user_id": u, "project_id": p, "deliveries": n}
        for (c, y, u, p), n in sorted(projects.items())
    ]
    if prows:
        db.session.execute(_ap.insert(), prows)
    return {"annual_stats": len(rows), "annual_projects": len(prows)}
