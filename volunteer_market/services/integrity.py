"""Integrity signals: patterns a secretary should look at, each linking to its deliveries.

Design overview
===============

Computed per community over a bounded window (:data:`WINDOW`, the last 90 days of
sessions), never over the whole ledger: every query starts from the community's
deliveries in the window (index ``ix_deliveries_community_started``) and reaches
ratings, participants and no-shows through their ``delivery_id`` indexes, and the
audit log through ``ix_audit_log_object``. The cost grows with one community's
recent activity, not with the ledger (``bench/integrity.py``).

Kinds (``kind``, ``user_ids``, ``delivery_ids``, ``detail``):

``repeat_rater``       one resident rated one member's deliveries >= :data:`REPEAT_MIN` times
``reciprocal_rating``  two members rated each other's deliveries as residents
``all_five_streak``    a member's latest >= :data:`STREAK_MIN` ratings are all 5
``odd_hours``          a session starting 23:00-06:00 in the community's time zone
``overlap``            one member in two sessions that overlap
``chronic_no_show``    a member recorded as no-show >= :data:`NO_SHOW_MIN` times
``rated_from_recorder`` a rating (not a proxy) entered from the address the delivery
                        was recorded from (the audit log's origin)

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
    Delivery,
    DeliveryNoShow,
    DeliveryParticipant,
    Rating,
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
KINDS = (
    "repeat_rater",
    "reciprocal_rating",
    "all_five_streak",
    "odd_hours",
    "overlap",
    "chronic_no_show",
    "rated_from_recorder",
)


@dataclass
class Signal:
    kind: str
    user_ids: list[int]
    delivery_ids: list[int]
    detail: dict[str, Any] = field(default_factory=dict)


def signals(actor: User, community: Area, *, now: datetime | None = None) -> list[Signal]:
    """Return the integrity signals of ``community`` over the last :data:`WINDOW`.

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
    out: list[Signal] = []
    out += _rating_signals(recent)
    out += _session_signals(community, recent)
    out += _no_shows(recent)
    out += _rated_from_recorder(recent)
    return out


def _rating_signals(recent: Any) -> list[Signal]:
    """repeat_rater, reciprocal_rating and all_five_streak from one bounded read."""
    rows = db.session.execute(
        sa.select(
            Rating.beneficiary_id,
            DeliveryParticipant.user_id,
            Rating.delivery_id,
            Rating.score,
            Rating.created_at,
        )
        .join(DeliveryParticipant, DeliveryParticipant.delivery_id == Rating.delivery_id)
        .where(Rating.delivery_id.in_(recent), Rating.is_proxy.is_(False))
        .order_by(Rating.created_at, Rating.id)
    ).all()
    pairs: dict[tuple[int, int], set[int]] = defaultdict(set)
    by_member: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for rater, member, delivery_id, score, _at in rows:
        pairs[(rater, member)].add(delivery_id)
        by_member[member].append((delivery_id, score))
    out: list[Signal] = []
    for (rater, member), ids in sorted(pairs.items()):
        if len(ids) >= REPEAT_MIN:
            out.append(Signal("repeat_rater", [rater, member], sorted(ids), {"count": len(ids)}))
    for (a, b), ids in sorted(pairs.items()):
        if a < b and (b, a) in pairs:
            both = sorted(ids | pairs[(b, a)])
            out.append(Signal("reciprocal_rating", [a, b], both, {"count": len(both)}))
    for member, seen in sorted(by_member.items()):
        run: list[int] = []
        for delivery_id, score in reversed(seen):
            if score != 5:
                break
            run.append(delivery_id)
        if len(run) >= STREAK_MIN:
            out.append(Signal("all_five_streak", [member], sorted(set(run)), {"count": len(run)}))
    return out


def _session_signals(community: Area, recent: Any) -> list[Signal]:
    """odd_hours (local start hour) and overlap (one member, two sessions)."""
    tz = area_zone(community)
    rows = db.session.execute(
        sa.select(DeliveryParticipant.user_id, Delivery.id, Delivery.started_at, Delivery.ended_at)
        .join(Delivery, Delivery.id == DeliveryParticipant.delivery_id)
        .where(Delivery.id.in_(recent))
        .order_by(DeliveryParticipant.user_id, Delivery.started_at, Delivery.id)
    ).all()
    odd: dict[int, set[int]] = defaultdict(set)
    odd_hour: dict[int, int] = {}
    by_member: dict[int, list[tuple[int, datetime, datetime]]] = defaultdict(list)
    for user_id, delivery_id, started, ended in rows:
        local = started.astimezone(tz)
        if local.hour in ODD_HOURS:
            odd[delivery_id].add(user_id)
            odd_hour[delivery_id] = local.hour
        by_member[user_id].append((delivery_id, started, ended))
    out = [
        Signal("odd_hours", sorted(users), [did], {"hour": odd_hour[did]})
        for did, users in sorted(odd.items())
    ]
    for user_id, sessions in sorted(by_member.items()):
        for (d1, _s1, e1), (d2, s2, _e2) in zip(sessions, sessions[1:], strict=False):
            if s2 < e1:
                out.append(Signal("overlap", [user_id], [d1, d2], {}))
    return out


def _no_shows(recent: Any) -> list[Signal]:
    rows = db.session.execute(
        sa.select(DeliveryNoShow.user_id, DeliveryNoShow.delivery_id).where(
            DeliveryNoShow.delivery_id.in_(recent)
        )
    ).all()
    by_user: dict[int, set[int]] = defaultdict(set)
    for user_id, delivery_id in rows:
        by_user[user_id].add(delivery_id)
    return [
        Signal("chronic_no_show", [user_id], sorted(ids), {"count": len(ids)})
        for user_id, ids in sorted(by_user.items())
        if len(ids) >= NO_SHOW_MIN
    ]


def _rated_from_recorder(recent: Any) -> list[Signal]:
    """Ratings (not proxies) whose audit origin is the delivery's recording origin."""
    recorded = aliased(AuditEntry)
    rated = aliased(AuditEntry)
    rows = db.session.execute(
        sa.select(Delivery.id, Delivery.recorded_by_id, Rating.beneficiary_id)
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
        .order_by(Delivery.id)
    ).all()
    return [
        Signal("rated_from_recorder", [recorder, resident], [did], {})
        for did, recorder, resident in rows
    ]
