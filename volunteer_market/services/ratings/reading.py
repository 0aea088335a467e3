"""Reading ratings as a given user may see them: a delivery's ratings with the window
state, the ratings a member received or a resident gave, the deliveries still to rate,
and project titles for lists. Who gave which score is shown only to those who may see
identities (see the package overview's privacy rules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import (
    Delivery,
    DeliveryBeneficiary,
    DeliveryParticipant,
    DeliveryStatus,
    Project,
    Rating,
    User,
    utcnow,
)
from .. import permissions
from ..points_policy import average_score
from .state import beneficiary_ids, window_open


def _names(user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(
        db.session.execute(
            sa.select(User.id, User.display_name).where(User.id.in_(sorted(user_ids)))
        ).all()
    )


def present_ratings(
    actor: User, ratings: list[Rating], *, identities: bool
) -> list[dict[str, Any]]:
    """Return ratings as dicts for ``actor``: with identities only when ``identities``.

    Replies must be loaded. Members get ``{id, delivery_id, score, comment,
    comment_hidden, can_report, mine, replies, can_reply, can_change}``; the rater's own
    rating adds its times. A hidden comment is ``None`` except to the community's
    secretary (``rating.hidden_view``), who also gets ``comment_hidden_reason``.
    """
    people: set[int] = set()
    for r in ratings:
        people.update(reply.member_id for reply in r.replies)
        if identities:
            people.update((r.beneficiary_id, r.entered_by_id))
    names = _names(people)
    participant_of: dict[int, bool] = {}
    sees_hidden: dict[int, bool] = {}
    out = []
    for r in ratings:
        if r.delivery_id not in participant_of:
            participant_of[r.delivery_id] = permissions.is_participant(actor.id, r.delivery_id)
        hidden = r.comment_hidden_at is not None
        if hidden and r.delivery_id not in sees_hidden:
            delivery = db.session.get(Delivery, r.delivery_id)
            sees_hidden[r.delivery_id] = delivery is not None and permissions.may(
                actor, "rating.hidden_view", delivery
            )
        shown = not hidden or sees_hidden[r.delivery_id]
        mine = actor.id in (r.beneficiary_id, r.entered_by_id)
        replied = any(reply.member_id == actor.id for reply in r.replies)
        item: dict[str, Any] = {
            "id": r.id,
            "delivery_id": r.delivery_id,
            "score": r.score,
            # a hidden comment (services/moderation.py) only to the community's secretary
            "comment": r.comment if shown else None,
            "comment_hidden": hidden,
            "can_report": participant_of[r.delivery_id] and bool(r.comment) and not hidden,
            "mine": mine,
            "can_reply": participant_of[r.delivery_id] and not replied,
            "replies": [
                {
                    "member_id": reply.member_id,
                    "display_name": names.get(reply.member_id, ""),
                    "text": reply.text,
                    "created_at": reply.created_at,
                }
                for reply in r.replies
            ],
        }
        if identities or mine:
            item["created_at"] = r.created_at
            item["updated_at"] = r.updated_at
            item["is_proxy"] = r.is_proxy
            item["via_code"] = r.via_code
        if hidden and shown:
            item["comment_hidden_reason"] = r.comment_hidden_reason
        if identities:
            item["beneficiary_id"] = r.beneficiary_id
            item["beneficiary_name"] = names.get(r.beneficiary_id, "")
            item["entered_by_id"] = r.entered_by_id
            item["entered_by_name"] = names.get(r.entered_by_id, "")
        out.append(item)
    return out


def _load_ratings(where: sa.ColumnElement[bool], *, by_score: bool) -> list[Rating]:
    order = (Rating.score.desc(), Rating.id) if by_score else (Rating.id,)
    return list(
        db.session.execute(
            sa.select(Rating).where(where).options(selectinload(Rating.replies)).order_by(*order)
        ).scalars()
    )


def delivery_ratings(
    actor: User, delivery: Delivery, *, now: datetime | None = None
) -> dict[str, Any]:
    """Return the delivery's ratings as ``actor`` may see them, with the window state.

    Identities (who gave which) only for ``rating.identities``; the beneficiaries who
    have not rated yet only for staff who may enter proxy ratings or see identities.
    """
    now = now or utcnow()
    identities = permissions.may(actor, "rating.identities", delivery)
    ratings = _load_ratings(Rating.delivery_id == delivery.id, by_score=not identities)
    scores = [r.score for r in ratings]
    avg = average_score(scores)
    beneficiaries = beneficiary_ids(delivery.id)
    rated = {r.beneficiary_id for r in ratings}
    open_ = window_open(delivery, now)
    can_proxy = permissions.may(actor, "rating.proxy", delivery)
    out: dict[str, Any] = {
        "delivery_id": delivery.id,
        "status": delivery.status.value,
        "rating_deadline": delivery.rating_deadline,
        "window_open": open_,
        "ratings_count": len(ratings),
        "beneficiaries_count": len(beneficiaries),
        "average_score": round(float(avg), 2) if avg is not None else None,
        "identities_visible": identities,
        "can_rate": open_
        and actor.id not in rated
        and permissions.may(actor, "rating.rate", delivery),
        "can_proxy": open_ and can_proxy and len(rated) < len(beneficiaries),
        "can_settle": delivery.status == DeliveryStatus.AWAITING_RATINGS
        and permissions.may(actor, "settlement.settle", delivery),
        "items": present_ratings(actor, ratings, identities=identities),
    }
    if identities or can_proxy:
        names = _names(set(beneficiaries))
        out["pending"] = [
            {"user_id": uid, "display_name": names.get(uid, "")}
            for uid in beneficiaries
            if uid not in rated
        ]
    for item in out["items"]:
        rating = _by_id(ratings, item["id"])
        item["can_change"] = bool(
            open_
            and (item["mine"] or can_proxy)
            and permissions.may(actor, "rating.change", rating)
        )
        # hide / unhide (services/moderation.py): the secretary, asked only of staff
        item["can_moderate"] = bool(
            identities
            and rating.comment
            and permissions.may(actor, "rating.moderate", permissions.RatingOversight(rating))
        )
    return out


def _by_id(ratings: list[Rating], rating_id: int) -> Rating:
    return next(r for r in ratings if r.id == rating_id)


def received_ratings(actor: User) -> sa.Select[Rating]:
    """Return a SELECT of ratings of deliveries ``actor`` served in, newest delivery first."""
    served = sa.select(DeliveryParticipant.delivery_id).where(
        DeliveryParticipant.user_id == actor.id
    )
    return (
        sa.select(Rating)
        .where(Rating.delivery_id.in_(served))
        .options(selectinload(Rating.replies))
        .order_by(Rating.delivery_id.desc(), Rating.score.desc(), Rating.id)
    )


def given_ratings(actor: User) -> sa.Select[Rating]:
    """Return a SELECT of the ratings that belong to ``actor`` (as a beneficiary)."""
    return (
        sa.select(Rating)
        .where(Rating.beneficiary_id == actor.id)
        .options(selectinload(Rating.replies))
        .order_by(Rating.id.desc())
    )


def to_rate(actor: User, *, now: datetime | None = None) -> list[Delivery]:
    """Return the deliveries ``actor`` received and may still rate, deadline first."""
    now = now or utcnow()
    rated = sa.select(Rating.delivery_id).where(Rating.beneficiary_id == actor.id)
    return list(
        db.session.execute(
            sa.select(Delivery)
            .join(DeliveryBeneficiary, DeliveryBeneficiary.delivery_id == Delivery.id)
            .where(
                DeliveryBeneficiary.user_id == actor.id,
                Delivery.status == DeliveryStatus.AWAITING_RATINGS,
                Delivery.rating_deadline > now,
                Delivery.id.not_in(rated),
            )
            .order_by(Delivery.rating_deadline, Delivery.id)
        ).scalars()
    )


def titles(deliveries: list[Delivery] | set[int]) -> dict[int, str]:
    """Return ``{delivery_id: project title}`` for the given deliveries (one query)."""
    ids = sorted(d if isinstance(d, int) else d.id for d in deliveries)
    if not ids:
        return {}
    return dict(
        db.session.execute(
            sa.select(Delivery.id, Project.title)
            .join(Project, Project.id == Delivery.project_id)
            .where(Delivery.id.in_(ids))
        ).all()
    )
