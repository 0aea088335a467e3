"""Integrity signals: patterns a secretary should look at, each linking to its deliveries.

Design overview
===============

Computed per community over a bounded window (:data:`WINDOW`, the last 90 days of
sessions), never over the whole ledger, and **aggregated in SQL**: every query starts
from the community's deliveries in the window (index ``ix_deliveries_community_started``),
reaches ratings, participants and no-shows through their ``delivery_id`` indexes (the
UNIQUE ``(delivery_id, ...)`` constraints) and the audit log through
``ix_audit_log_object``, and lets the database do the counting: ``GROUP BY ... HAVING``
for the repeat, reciprocal and no-show kinds, window functions (``SUM ... OVER``,
``LAG ... OVER``) for the streaks and the overlaps. Only the signals themselves come
back to Python, never the rows they are computed from (the odd hours are the one
exception: the local hour needs the time zone, so the window's ``(id, started_at)``
pairs -- one row per delivery -- are read and the hours taken in Python). The cost
grows with one community's recent activity, not with the ledger (``bench/integrity.py``,
``docs/benchmarks.md``).

Caps. Each kind returns at most :data:`SIGNAL_CAP` signals (in the fixed order below,
the first ones) and each signal at most :data:`IDS_CAP` delivery ids (the lowest);
``detail["count"]`` stays the true count, and :func:`report` gives each kind's total
before the cap (``totals``), so a page can say "showing 100 of 2,402".

Kinds (``kind``, ``user_ids``, ``delivery_ids``, ``detail``), in their order:

``repeat_rater``       one resident rated one member's deliveries >= :data:`REPEAT_MIN` times
                       (by resident, member)
``reciprocal_rating``  two members rated each other's deliveries as residents (by pair)
``all_five_streak``    a member's latest >= :data:`STREAK_MIN` ratings are all 5 (by member)
``odd_hours``          a session starting 23:00-06:00 in the community's time zone (by id)
``overlap``            one member in two consecutive sessions that overlap (by member,
                       then start)
``chronic_no_show``    a member recorded as no-show >= :data:`NO_SHOW_MIN` times (by member)
``rated_from_recorder`` a rating (not a proxy) entered from the address the delivery
                        was recorded from (the audit log's origin; by delivery)
``disputed_callback``  a proxy rating the resident disputed when the secretary phoned
                       him back (回访, ``services/callbacks.py``; by rating)

Who: the community's secretary, officers whose grant covers it (``integrity.view``).
Signals are hints, never verdicts: nothing is changed by reading them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    Area,
    AuditEntry,
    CallbackOutcome,
    Delivery,
    DeliveryNoShow,
    DeliveryParticipant,
    Rating,
    RatingCallback,
    User,
    utcnow,
)
from ..zones import area_zone
from . import permissions

WINDOW = timedelta(days=90)
REPEAT_MIN = 3
STREAK_MIN = 5
NO_SHOW_MIN = 3
#: Local hours a session should not start in (23:00 up to 06:00).
ODD_HOURS = frozenset({23, 0, 1, 2, 3, 4, 5})
#: At most this many signals of each kind are returned (the first in the kind's order).
SIGNAL_CAP = 100
#: At most this many delivery ids per signal (the lowest); ``detail.count`` stays true.
IDS_CAP = 50
KINDS = (
    "repeat_rater",
    "reciprocal_rating",
    "all_five_streak",
    "odd_hours",
    "overlap",
    "chronic_no_show",
    "rated_from_recorder",
    "disputed_callback",
)


@dataclass
class Signal:
    kind: str
    user_ids: list[int]
    delivery_ids: list[int]
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """The capped signals and, per kind, how many there are before the cap."""

    items: list[Signal]
    totals: dict[str, int]


def signals(actor: User, community: Area, *, now: datetime | None = None) -> list[Signal]:
    """Return the integrity signals of ``community`` over the last :data:`WINDOW`.

    :raises Forbidden: not the community's secretary nor an officer over it.
    """
    return report(actor, community, now=now).items


def report(actor: User, community: Area, *, now: datetime | None = None) -> Report:
    """Return the signals (capped per kind) and each kind's total.

    :raises Forbidden: not the community's secretary nor an officer over it.
    """
    permissions.require(actor, "integrity.view", community)
    now = now or utcnow()
    since = now - WINDOW
    recent = (
        sa.select(Delivery.id)
        .where(Delivery.community_id == community.id, Delivery.started_at >= since)
        .scalar_subquery()
    )
    found = _rating_signals(recent)
    out = Report([], {})
    for kind, compute in (
        ("repeat_rater", lambda r: found["repeat_rater"]),
        ("reciprocal_rating", lambda r: found["reciprocal_rating"]),
        ("all_five_streak", lambda r: found["all_five_streak"]),
        ("odd_hours", lambda r: _odd_hours(community, since)),
        ("overlap", _overlap),
        ("chronic_no_show", _no_shows),
        ("rated_from_recorder", _rated_from_recorder),
        ("disputed_callback", _disputed_callbacks),
    ):
        items, total = compute(recent)
        out.items += items
        out.totals[kind] = total
    return out


def _ids(ids: set[int] | list[int]) -> list[int]:
    return sorted(set(ids))[:IDS_CAP]


def _rating_signals(recent: Any) -> dict[str, tuple[list[Signal], int]]:
    """repeat_rater, reciprocal_rating and all_five_streak in ONE statement: the window's
    ratings (not proxies) joined to the delivery's participants are read once (a CTE the
    database materialises) and the three kinds are aggregated from it, ``UNION ALL``."""
    base = (
        sa.select(
            Rating.beneficiary_id.label("rater"),
            DeliveryParticipant.user_id.label("member"),
            Rating.delivery_id.label("delivery_id"),
            Rating.score.label("score"),
            Rating.created_at.label("created_at"),
            Rating.id.label("rating_id"),
        )
        .join(DeliveryParticipant, DeliveryParticipant.delivery_id == Rating.delivery_id)
        .where(Rating.delivery_id.in_(recent), Rating.is_proxy.is_(False))
        .cte("rated")
        # read once for the three kinds (SQLite would inline it into each; both engines
        # accept the keyword: SQLite >= 3.35, PostgreSQL >= 12)
        .prefix_with("MATERIALIZED")
    )
    pairs = sa.select(base.c.rater, base.c.member, base.c.delivery_id).distinct().cte("rated_pairs")
    # repeat_rater: GROUP BY (rater, member) HAVING count >= REPEAT_MIN, the first pairs
    groups = (
        sa.select(
            pairs.c.rater,
            pairs.c.member,
            sa.func.count().label("n"),
            sa.func.count().over().label("total"),
        )
        .group_by(pairs.c.rater, pairs.c.member)
        .having(sa.func.count() >= REPEAT_MIN)
        .order_by(pairs.c.rater, pairs.c.member)
        .limit(SIGNAL_CAP)
        .subquery("groups")
    )
    repeat = sa.select(
        sa.literal("repeat_rater").label("kind"),
        groups.c.rater.label("a"),
        groups.c.member.label("b"),
        groups.c.n,
        groups.c.total,
        pairs.c.delivery_id,
    ).join(pairs, sa.and_(pairs.c.rater == groups.c.rater, pairs.c.member == groups.c.member))
    # reciprocal_rating: pairs (a < b) rated both ways, a self-join of the directions
    direct = sa.select(pairs.c.rater, pairs.c.member).distinct().cte("directions")
    x, y = direct.alias("x"), direct.alias("y")
    both = (
        sa.select(
            x.c.rater.label("a"), x.c.member.label("b"), sa.func.count().over().label("total")
        )
        .join(y, sa.and_(y.c.rater == x.c.member, y.c.member == x.c.rater))
        .where(x.c.rater < x.c.member)
        .order_by(x.c.rater, x.c.member)
        .limit(SIGNAL_CAP)
        .subquery("both_ways")
    )
    reciprocal = sa.select(
        sa.literal("reciprocal_rating").label("kind"),
        both.c.a,
        both.c.b,
        sa.literal(0).label("n"),
        both.c.total,
        pairs.c.delivery_id,
    ).join(
        pairs,
        sa.or_(
            sa.and_(pairs.c.rater == both.c.a, pairs.c.member == both.c.b),
            sa.and_(pairs.c.rater == both.c.b, pairs.c.member == both.c.a),
        ),
    )
    # all_five_streak: each member's ratings newest first; the streak is the rows before
    # the first non-5 (a running SUM(score <> 5) OVER of 0)
    ranked = sa.select(
        base.c.member,
        base.c.delivery_id,
        sa.func.sum(sa.case((base.c.score != 5, 1), else_=0))
        .over(
            partition_by=base.c.member,
            order_by=(base.c.created_at.desc(), base.c.rating_id.desc()),
            rows=(None, 0),
        )
        .label("broken"),
    ).cte("ranked")
    streaks = (
        sa.select(
            ranked.c.member, sa.func.count().label("n"), sa.func.count().over().label("total")
        )
        .where(ranked.c.broken == 0)
        .group_by(ranked.c.member)
        .having(sa.func.count() >= STREAK_MIN)
        .order_by(ranked.c.member)
        .limit(SIGNAL_CAP)
        .subquery("streaks")
    )
    streak = (
        sa.select(
            sa.literal("all_five_streak").label("kind"),
            streaks.c.member,
            sa.literal(0).label("b"),
            streaks.c.n,
            streaks.c.total,
            ranked.c.delivery_id,
        )
        .join(ranked, ranked.c.member == streaks.c.member)
        .where(ranked.c.broken == 0)
    )
    found: dict[str, dict[tuple[int, int], set[int]]] = defaultdict(lambda: defaultdict(set))
    count: dict[tuple[str, int, int], int] = {}
    totals: dict[str, int] = defaultdict(int)
    for kind, a, b, n, total, delivery_id in db.session.execute(
        sa.union_all(repeat, reciprocal, streak)
    ):
        found[kind][(a, b)].add(delivery_id)
        count[(kind, a, b)] = n
        totals[kind] = total
    out: dict[str, tuple[list[Signal], int]] = {}
    out["repeat_rater"] = (
        [
            Signal("repeat_rater", [a, b], _ids(ids), {"count": count[("repeat_rater", a, b)]})
            for (a, b), ids in sorted(found["repeat_rater"].items())
        ],
        totals["repeat_rater"],
    )
    out["reciprocal_rating"] = (
        [
            Signal("reciprocal_rating", [a, b], _ids(ids), {"count": len(ids)})
            for (a, b), ids in sorted(found["reciprocal_rating"].items())
        ],
        totals["reciprocal_rating"],
    )
    out["all_five_streak"] = (
        [
            Signal("all_five_streak", [m], _ids(ids), {"count": count[("all_five_streak", m, 0)]})
            for (m, _b), ids in sorted(found["all_five_streak"].items())
        ],
        totals["all_five_streak"],
    )
    return out


def _odd_hours(community: Area, since: datetime) -> tuple[list[Signal], int]:
    """The local start hour of each delivery of the window (one row per delivery);
    participants only of the capped odd ones."""
    tz = area_zone(community)
    starts = db.session.execute(
        sa.select(Delivery.id, Delivery.started_at)
        .where(Delivery.community_id == community.id, Delivery.started_at >= since)
        .where(sa.exists().where(DeliveryParticipant.delivery_id == Delivery.id))
        .order_by(Delivery.id)
    ).all()
    odd = [(did, local.hour) for did, s in starts if (local := s.astimezone(tz)).hour in ODD_HOURS]
    chosen = dict(odd[:SIGNAL_CAP])
    users: dict[int, list[int]] = defaultdict(list)
    if chosen:
        for did, uid in db.session.execute(
            sa.select(DeliveryParticipant.delivery_id, DeliveryParticipant.user_id).where(
                DeliveryParticipant.delivery_id.in_(sorted(chosen))
            )
        ):
            users[did].append(uid)
    items = [
        Signal("odd_hours", sorted(users[did]), [did], {"hour": hour})
        for did, hour in sorted(chosen.items())
    ]
    return items, len(odd)


def _overlap(recent: Any) -> tuple[list[Signal], int]:
    """Each member's sessions by start; a session starting before the previous one
    ended (``LAG(ended_at) OVER``) overlaps it."""
    member, by_start = DeliveryParticipant.user_id, (Delivery.started_at, Delivery.id)
    seq = (
        sa.select(
            DeliveryParticipant.user_id.label("member"),
            Delivery.id.label("delivery_id"),
            Delivery.started_at.label("started_at"),
            sa.func.lag(Delivery.id).over(partition_by=member, order_by=by_start).label("prev_id"),
            sa.func.lag(Delivery.ended_at)
            .over(partition_by=member, order_by=by_start)
            .label("prev_end"),
            sa.func.row_number().over(partition_by=member, order_by=by_start).label("pos"),
        )
        .join(Delivery, Delivery.id == DeliveryParticipant.delivery_id)
        .where(Delivery.id.in_(recent))
        .subquery("sessions")
    )
    rows = db.session.execute(
        sa.select(seq.c.member, seq.c.prev_id, seq.c.delivery_id, sa.func.count().over())
        .where(seq.c.prev_id.is_not(None), seq.c.started_at < seq.c.prev_end)
        .order_by(seq.c.member, seq.c.pos)
        .limit(SIGNAL_CAP)
    ).all()
    items = [Signal("overlap", [uid], [d1, d2], {}) for uid, d1, d2, _n in rows]
    return items, rows[0][3] if rows else 0


def _no_shows(recent: Any) -> tuple[list[Signal], int]:
    """One GROUP BY user HAVING count >= NO_SHOW_MIN; ids of the capped members."""
    shows = (
        sa.select(DeliveryNoShow.user_id.label("user_id"), DeliveryNoShow.delivery_id)
        .where(DeliveryNoShow.delivery_id.in_(recent))
        .distinct()
        .cte("no_shows")
    )
    groups = (
        sa.select(shows.c.user_id, sa.func.count().label("n"), sa.func.count().over().label("t"))
        .group_by(shows.c.user_id)
        .having(sa.func.count() >= NO_SHOW_MIN)
        .order_by(shows.c.user_id)
        .limit(SIGNAL_CAP)
        .subquery("groups")
    )
    rows = db.session.execute(
        sa.select(groups.c.user_id, groups.c.n, groups.c.t, shows.c.delivery_id).join(
            shows, shows.c.user_id == groups.c.user_id
        )
    ).all()
    found: dict[int, set[int]] = defaultdict(set)
    count: dict[int, int] = {}
    total = rows[0][2] if rows else 0
    for user_id, n, _total, delivery_id in rows:
        found[user_id].add(delivery_id)
        count[user_id] = n
    items = [
        Signal("chronic_no_show", [u], _ids(ids), {"count": count[u]})
        for u, ids in sorted(found.items())
    ]
    return items, total


def _rated_from_recorder(recent: Any) -> tuple[list[Signal], int]:
    """Ratings (not proxies) whose audit origin is the delivery's recording origin."""
    recorded = aliased(AuditEntry)
    rated = aliased(AuditEntry)
    rows = db.session.execute(
        sa.select(
            Delivery.id, Delivery.recorded_by_id, Rating.beneficiary_id, sa.func.count().over()
        )
        .join(Rating, Rating.delivery_id == Delivery.id)
        .join(
            recorded,
            sa.and_(
                recorded.object_type == "delivery",
                recorded.object_id == Delivery.id,
                recorded.action == "delivery.record",
            ),
        )
        .join(
            rated,
            sa.and_(
                rated.object_type == "rating",
                rated.object_id == Rating.id,
                rated.action == "rating.create",
            ),
        )
        .where(
            Delivery.id.in_(recent),
            Rating.is_proxy.is_(False),
            recorded.origin.is_not(None),
            rated.origin == recorded.origin,
        )
        .order_by(Delivery.id, Rating.id)
        .limit(SIGNAL_CAP)
    ).all()
    items = [
        Signal("rated_from_recorder", [recorder, resident], [did], {})
        for did, recorder, resident, _n in rows
    ]
    return items, rows[0][3] if rows else 0


def _disputed_callbacks(recent: Any) -> tuple[list[Signal], int]:
    """Proxy ratings of the window whose call-back (回访) the resident disputed."""
    rows = db.session.execute(
        sa.select(
            Rating.id,
            Rating.delivery_id,
            Rating.entered_by_id,
            Rating.beneficiary_id,
            sa.func.count().over(),
        )
        .join(RatingCallback, RatingCallback.rating_id == Rating.id)
        .where(
            Rating.delivery_id.in_(recent),
            RatingCallback.outcome == CallbackOutcome.DISPUTED,
        )
        .order_by(Rating.id)
        .limit(SIGNAL_CAP)
    ).all()
    items = [
        Signal("disputed_callback", [entered_by, resident], [did], {"rating_id": rid})
        for rid, did, entered_by, resident, _n in rows
    ]
    return items, rows[0][4] if rows else 0
