"""The integrity signals as first built (before the SQL aggregation): every row of the
window read into Python and the patterns found there. Kept as the oracle the SQL
version must agree with (``test_sql_aggregation.py``); not used by the app."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from volunteer_market.extensions import db
from volunteer_market.models import (
    Area,
    AuditEntry,
    Delivery,
    DeliveryNoShow,
    DeliveryParticipant,
    Rating,
)
from volunteer_market.services.integrity import (
    NO_SHOW_MIN,
    ODD_HOURS,
    REPEAT_MIN,
    STREAK_MIN,
    WINDOW,
    Signal,
)
from volunteer_market.zones import area_zone


def signals(community: Area, now: datetime) -> list[Signal]:
    """Return the signals of ``community`` over the window, computed row by row."""
    recent = (
        sa.select(Delivery.id)
        .where(Delivery.community_id == community.id, Delivery.started_at >= now - WINDOW)
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
