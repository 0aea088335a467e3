"""Ratings (评价): beneficiaries score a delivery 1-5; participants reply once.

Design overview
===============

Who rates. Only a beneficiary of the delivery rates it, once (UNIQUE
``(delivery_id, beneficiary_id)``; a second POST is a 409 that points at the
change path). Participants never rate their own delivery. A grid worker or the
secretary of the delivery's community may enter a rating for a beneficiary
(``on_behalf_of``): it is flagged ``is_proxy``, audited, and the beneficiary is
notified. Without an account password a resident rates with the one-time
six-digit code or the QR token of the delivery (:func:`rate_by_code`); a wrong,
used or expired code gets one generic 422 (:class:`InvalidRatingCode`) that never
says which, and failures are throttled per IP by the web/API layer
(``web/rating_throttle.py``). Any rating, however entered, uses up the code.

When. Inside the delivery's window: ``now < delivery.rating_deadline``, fixed at
recording time from the community's points policy (``rating_window_days``), and
only while the delivery awaits ratings. The rating may be changed
(:func:`change_rating`) by the beneficiary or by proxy staff inside the window
and until settlement; after that, 409.

Settlement. When the last beneficiary rates, the delivery is settled in the same
transaction (``services/settlement.py``, ``settled_by_id`` NULL = automatic).

Locks (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway).
Recording a rating may settle, and settling posts to the ledger, whose rule is
"the ledger head row first". So :func:`rate` takes the head lock, then the
delivery row (``FOR UPDATE``), and only then reads the ratings: concurrent
ratings of one delivery serialise, the last one sees all the others and settles
exactly once. :func:`change_rating` never posts, so it locks the delivery row
only (settlement waits for it, or it waits for settlement and sees ``settled``).

Privacy. Members (participants) see scores, comments and replies, never who gave
which: no rater or beneficiary ids, no proxy flag, no times, and the list is
ordered by score, not by time (with one beneficiary the author is obvious; that
is inherent). The community's secretary and the officers above it see who
(``rating.identities``); every caller sees their own rating marked ``mine``.
Notifications of a rating to the participants carry the score, never the rater.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import (
    Delivery,
    DeliveryBeneficiary,
    DeliveryParticipant,
    DeliveryStatus,
    Project,
    Rating,
    RatingReply,
    Settlement,
    User,
    utcnow,
)
from ..models.ratings import COMMENT_MAX
from . import audit, ledger, permissions
from . import deliveries as delivery_service
from .errors import Conflict, Forbidden, NotFound, ValidationFailed
from .points_policy import MAX_SCORE, MIN_SCORE, average_score

CODE_RE = re.compile(r"^\d{6}$")
#: One message for a wrong, used or expired code/token: it must not tell which.
INVALID_CODE_MESSAGE = "This rating code is not valid: it may be mistyped, already used or expired."

_UNSET: Any = object()


class InvalidRatingCode(ValidationFailed):
    """A code or token that does not open a rating (wrong, used, expired): 422."""

    def __init__(self, field: str = "code") -> None:
        super().__init__(INVALID_CODE_MESSAGE, errors={field: [INVALID_CODE_MESSAGE]})


@dataclass
class Rated:
    """A recorded rating and, when it completed the set, the automatic settlement."""

    rating: Rating
    delivery: Delivery
    settlement: Settlement | None = None


# --- input --------------------------------------------------------------------


def clean_score(score: Any) -> int:
    """Return the score as an int 1..5.

    :raises ValidationFailed: anything else (bools, fractions, strings).
    """
    if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
        raise ValidationFailed(
            "The score must be a whole number from 1 to 5.",
            errors={"score": [f"A whole number from {MIN_SCORE} to {MAX_SCORE}."]},
        )
    return score


def clean_text(text: Any, field: str = "comment", *, required: bool = False) -> str | None:
    """Return the stripped text (None when empty and optional).

    :raises ValidationFailed: missing when required, not a string, or too long.
    """
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ValidationFailed("Invalid text.", errors={field: ["Must be text."]})
    text = text.strip()
    if not text:
        if required:
            raise ValidationFailed("Text is required.", errors={field: ["Required."]})
        return None
    if len(text) > COMMENT_MAX:
        raise ValidationFailed(
            "The text is too long.", errors={field: [f"At most {COMMENT_MAX} characters."]}
        )
    return text


# --- locking and state --------------------------------------------------------


def lock_delivery(delivery_id: int) -> Delivery:
    """Lock the delivery row (``FOR UPDATE``) and return it freshly read.

    :raises NotFound: no such delivery.
    """
    delivery = db.session.execute(
        sa.select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound("Delivery not found.")
    return delivery


def window_open(delivery: Delivery, now: datetime | None = None) -> bool:
    """Return True while the delivery accepts ratings (awaiting, before the deadline)."""
    now = now or utcnow()
    return delivery.status == DeliveryStatus.AWAITING_RATINGS and now < delivery.rating_deadline


def _require_open(delivery: Delivery, now: datetime) -> None:
    if delivery.status == DeliveryStatus.SETTLED:
        raise Conflict("This delivery has been settled; its ratings are closed.")
    if delivery.status != DeliveryStatus.AWAITING_RATINGS:
        raise Conflict(f"A delivery that is {delivery.status.value} takes no ratings.")
    if now >= delivery.rating_deadline:
        raise Conflict(
            "The rating window of this delivery closed at "
            f"{delivery.rating_deadline.isoformat(timespec='minutes')}."
        )


def scores_of(delivery_id: int) -> list[int]:
    """Return the scores given for the delivery, in id order."""
    return list(
        db.session.scalars(
            sa.select(Rating.score).where(Rating.delivery_id == delivery_id).order_by(Rating.id)
        )
    )


def beneficiary_ids(delivery_id: int) -> list[int]:
    """Return the ids of the delivery's beneficiaries."""
    return list(
        db.session.scalars(
            sa.select(DeliveryBeneficiary.user_id)
            .where(DeliveryBeneficiary.delivery_id == delivery_id)
            .order_by(DeliveryBeneficiary.id)
        )
    )


def participant_ids(delivery_id: int) -> list[int]:
    """Return the ids of the delivery's participants."""
    return list(
        db.session.scalars(
            sa.select(DeliveryParticipant.user_id)
            .where(DeliveryParticipant.delivery_id == delivery_id)
            .order_by(DeliveryParticipant.id)
        )
    )


def _rating_of(delivery_id: int, beneficiary_id: int) -> Rating | None:
    return db.session.execute(
        sa.select(Rating)
        .where(Rating.delivery_id == delivery_id, Rating.beneficiary_id == beneficiary_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _title(delivery: Delivery) -> str:
    return db.session.execute(
        sa.select(Project.title).where(Project.id == delivery.project_id)
    ).scalar_one()


# --- rating -------------------------------------------------------------------


def rate(
    actor: User,
    delivery: Delivery,
    score: Any,
    comment: Any = None,
    *,
    on_behalf_of: int | None = None,
    now: datetime | None = None,
) -> Rated:
    """Record the actor's rating of ``delivery`` (or a proxy rating for ``on_behalf_of``).

    Settles the delivery automatically when this is the last beneficiary's rating.

    :raises ValidationFailed: bad score or comment; ``on_behalf_of`` is not a beneficiary.
    :raises Forbidden: a participant; not a beneficiary; proxy by someone who is not a
        grid worker or the secretary of the delivery's community.
    :raises Conflict: window closed, delivery settled or cancelled, already rated.
    """
    now = now or utcnow()
    score = clean_score(score)
    text = clean_text(comment)
    if permissions.is_participant(actor.id, delivery.id):
        raise Forbidden("Participants never rate their own delivery.", action="rating.rate")
    if on_behalf_of is None or on_behalf_of == actor.id:
        permissions.require(actor, "rating.rate", delivery)
        beneficiary_id = actor.id
    else:
        permissions.require(actor, "rating.proxy", delivery)
        if not permissions.is_beneficiary(on_behalf_of, delivery.id):
            raise ValidationFailed(
                "on_behalf_of must be a beneficiary of this delivery.",
                errors={"on_behalf_of": ["Not a beneficiary of this delivery."]},
            )
        beneficiary_id = on_behalf_of
    return _record(actor, delivery.id, beneficiary_id, score, text, via_code=False, now=now)


def _record(
    entered_by: User,
    delivery_id: int,
    beneficiary_id: int,
    score: int,
    comment: str | None,
    *,
    via_code: bool,
    now: datetime,
) -> Rated:
    """Insert the rating under the locks, use up the code, audit, notify, maybe settle."""
    from . import settlement as settlement_service

    ledger.lock_head()  # lock order: ledger head first (the rating may settle and post)
    delivery = lock_delivery(delivery_id)
    try:
        _require_open(delivery, now)
    except Conflict:
        if via_code:
            raise InvalidRatingCode() from None
        raise
    existing = _rating_of(delivery_id, beneficiary_id)
    if existing is not None:
        if via_code:
            raise InvalidRatingCode()
        who = "You have" if beneficiary_id == entered_by.id else "This beneficiary has"
        raise Conflict(
            f"{who} already rated this delivery (rating {existing.id}); "
            "change that rating instead.",
            rating_id=existing.id,
        )
    used = db.session.execute(
        sa.update(DeliveryBeneficiary)
        .where(
            DeliveryBeneficiary.delivery_id == delivery_id,
            DeliveryBeneficiary.user_id == beneficiary_id,
            DeliveryBeneficiary.code_used_at.is_(None),
        )
        .values(code_used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if via_code and not used:
        raise InvalidRatingCode()
    is_proxy = entered_by.id != beneficiary_id
    rating = Rating(
        delivery_id=delivery_id,
        beneficiary_id=beneficiary_id,
        entered_by_id=entered_by.id,
        score=score,
        comment=comment,
        is_proxy=is_proxy,
        via_code=via_code,
        created_at=now,
        updated_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(rating)
            db.session.flush()
    except IntegrityError:
        if via_code:
            raise InvalidRatingCode() from None
        raise Conflict("This delivery has already been rated for this beneficiary.") from None
    audit.record(
        entered_by,
        "rating.create",
        "rating",
        rating.id,
        area_id=delivery.community_id,
        detail={
            "delivery_id": delivery_id,
            "beneficiary_id": beneficiary_id,
            "score": score,
            "is_proxy": is_proxy,
            "via_code": via_code,
        },
    )
    title = _title(delivery)
    _notify_participants(delivery, "rating.received", rating, title)
    if is_proxy:
        audit.notify(
            beneficiary_id,
            "rating.proxy_entered",
            object_type="delivery",
            object_id=delivery_id,
            params={"title": title, "score": score, "by": entered_by.display_name},
        )
    result = Rated(rating, delivery)
    beneficiaries = beneficiary_ids(delivery_id)
    if beneficiaries and len(scores_of(delivery_id)) == len(beneficiaries):
        result.settlement = settlement_service.settle_locked(None, delivery, now=now)
    return result


def _notify_participants(delivery: Delivery, kind: str, rating: Rating, title: str) -> None:
    """Tell the participants about a rating: score and whether there is a comment, no rater."""
    for user_id in participant_ids(delivery.id):
        audit.notify(
            user_id,
            kind,
            object_type="delivery",
            object_id=delivery.id,
            params={
                "title": title,
                "score": rating.score,
                "has_comment": bool(rating.comment),
                "rating_id": rating.id,
            },
        )


def find_code(
    *, code: str | None = None, token: str | None = None, now: datetime | None = None
) -> DeliveryBeneficiary:
    """Return the beneficiary row a code or QR token opens (unused, window open).

    :raises InvalidRatingCode: wrong, used or expired (one generic message), or an
        inactive account.
    """
    now = now or utcnow()
    field = "token" if token is not None and code is None else "code"
    row: DeliveryBeneficiary | None = None
    if code is not None:
        if not isinstance(code, str) or not CODE_RE.match(code):
            raise InvalidRatingCode(field)
        row = delivery_service.find_beneficiary_by_code(code, now=now)
    elif token is not None and isinstance(token, str) and 16 <= len(token) <= 128:
        row = delivery_service.find_beneficiary_by_token(token)
        if row is not None:
            delivery = db.session.get(Delivery, row.delivery_id)
            if row.code_used_at is not None or delivery is None or not window_open(delivery, now):
                row = None
    if row is None:
        raise InvalidRatingCode(field)
    user = db.session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise InvalidRatingCode(field)
    return row


def describe_code(
    *, code: str | None = None, token: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Return what a valid code rates (project title, date) for the rating page.

    Nothing personal: no names, no ids of people.

    :raises InvalidRatingCode: as :func:`find_code`.
    """
    row = find_code(code=code, token=token, now=now)
    delivery = db.session.get(Delivery, row.delivery_id)
    assert delivery is not None
    return {
        "delivery_id": delivery.id,
        "title": _title(delivery),
        "started_at": delivery.started_at,
        "ended_at": delivery.ended_at,
        "rating_deadline": delivery.rating_deadline,
    }


def rate_by_code(
    *,
    code: str | None = None,
    token: str | None = None,
    score: Any,
    comment: Any = None,
    now: datetime | None = None,
) -> Rated:
    """Record a rating from the one-time code or QR token, without a password.

    The code identifies both the beneficiary and the delivery and works once.

    :raises ValidationFailed: bad score or comment (the code is not looked at).
    :raises InvalidRatingCode: wrong, used or expired code/token (422, generic).
    """
    now = now or utcnow()
    score = clean_score(score)
    text = clean_text(comment)
    if (code is None) == (token is None):
        raise ValidationFailed(
            "Give either the six-digit code or the QR token.",
            errors={"code": ["Give either code or token."]},
        )
    row = find_code(code=code, token=token, now=now)
    user = db.session.get(User, row.user_id)
    assert user is not None
    try:
        return _record(user, row.delivery_id, user.id, score, text, via_code=True, now=now)
    except InvalidRatingCode:
        raise InvalidRatingCode("token" if token is not None else "code") from None


def get_rating(rating_id: int) -> Rating:
    """Return the rating or raise :class:`NotFound`."""
    rating = db.session.get(Rating, rating_id)
    if rating is None:
        raise NotFound("Rating not found.")
    return rating


def get_visible_rating(actor: User, rating_id: int) -> Rating:
    """Return the rating if ``actor`` may see its delivery, else raise :class:`NotFound`."""
    rating = get_rating(rating_id)
    delivery = db.session.get(Delivery, rating.delivery_id)
    if delivery is None or not permissions.may(actor, "delivery.view", delivery):
        raise NotFound("Rating not found.")
    return rating


def change_rating(
    actor: User,
    rating: Rating,
    score: Any = _UNSET,
    comment: Any = _UNSET,
    *,
    now: datetime | None = None,
) -> Rating:
    """Change the score and/or comment inside the window, until settlement.

    The beneficiary changes their own rating; proxy staff may change it for them
    (the rating then becomes a proxy rating, audited).

    :raises ValidationFailed: nothing to change, bad score or comment.
    :raises Forbidden: anyone else (participants never).
    :raises Conflict: window closed, delivery settled or cancelled.
    """
    now = now or utcnow()
    if score is _UNSET and comment is _UNSET:
        raise ValidationFailed(
            "Nothing to change.", errors={"score": ["Give a score or a comment."]}
        )
    new_score = rating.score if score is _UNSET else clean_score(score)
    new_comment = rating.comment if comment is _UNSET else clean_text(comment)
    permissions.require(actor, "rating.change", rating)
    delivery = lock_delivery(rating.delivery_id)
    _require_open(delivery, now)
    db.session.refresh(rating)
    old = {"score": rating.score, "comment": rating.comment}
    is_proxy = actor.id != rating.beneficiary_id
    rating.score = new_score
    rating.comment = new_comment
    rating.entered_by_id = actor.id
    rating.is_proxy = is_proxy
    rating.via_code = False
    rating.updated_at = now
    db.session.flush()
    audit.record(
        actor,
        "rating.change",
        "rating",
        rating.id,
        area_id=delivery.community_id,
        detail={
            "delivery_id": delivery.id,
            "beneficiary_id": rating.beneficiary_id,
            "old_score": old["score"],
            "score": new_score,
            "comment_changed": old["comment"] != new_comment,
            "is_proxy": is_proxy,
        },
    )
    title = _title(delivery)
    _notify_participants(delivery, "rating.changed", rating, title)
    if is_proxy:
        audit.notify(
            rating.beneficiary_id,
            "rating.proxy_entered",
            object_type="delivery",
            object_id=delivery.id,
            params={"title": title, "score": new_score, "by": actor.display_name},
        )
    return rating


def reply(actor: User, rating: Rating, text: Any, *, now: datetime | None = None) -> RatingReply:
    """Reply to a rating of a delivery the actor served in (once per rating).

    :raises ValidationFailed: empty or too long text.
    :raises Forbidden: not a participant of the rated delivery.
    :raises Conflict: the actor already replied to this rating.
    """
    now = now or utcnow()
    body = clean_text(text, "text", required=True)
    permissions.require(actor, "rating.reply", rating)
    existing = db.session.execute(
        sa.select(RatingReply.id).where(
            RatingReply.rating_id == rating.id, RatingReply.member_id == actor.id
        )
    ).first()
    if existing is not None:
        raise Conflict("You have already replied to this rating.")
    row = RatingReply(rating_id=rating.id, member_id=actor.id, text=body, created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        raise Conflict("You have already replied to this rating.") from None
    delivery = db.session.get(Delivery, rating.delivery_id)
    assert delivery is not None
    audit.record(
        actor,
        "rating.reply",
        "rating_reply",
        row.id,
        area_id=delivery.community_id,
        detail={"rating_id": rating.id, "delivery_id": delivery.id},
    )
    audit.notify(
        rating.beneficiary_id,
        "rating.replied",
        object_type="delivery",
        object_id=delivery.id,
        params={"title": _title(delivery), "member": actor.display_name},
    )
    return row


# --- reading ------------------------------------------------------------------


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

    Replies must be loaded. Members get ``{id, delivery_id, score, comment, mine,
    replies, can_reply, can_change}``; the rater's own rating adds its times.
    """
    people: set[int] = set()
    for r in ratings:
        people.update(reply.member_id for reply in r.replies)
        if identities:
            people.update((r.beneficiary_id, r.entered_by_id))
    names = _names(people)
    participant_of: dict[int, bool] = {}
    out = []
    for r in ratings:
        if r.delivery_id not in participant_of:
            participant_of[r.delivery_id] = permissions.is_participant(actor.id, r.delivery_id)
        mine = actor.id in (r.beneficiary_id, r.entered_by_id)
        replied = any(reply.member_id == actor.id for reply in r.replies)
        item: dict[str, Any] = {
            "id": r.id,
            "delivery_id": r.delivery_id,
            "score": r.score,
            "comment": r.comment,
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
        item["can_change"] = bool(
            open_
            and (item["mine"] or can_proxy)
            and permissions.may(actor, "rating.change", _by_id(ratings, item["id"]))
        )
    return out


def _by_id(ratings: list[Rating], rating_id: int) -> Rating:
    return next(r for r in ratings if r.id == rating_id)


def received_ratings(actor: User) -> sa.Select[tuple[Rating]]:
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


def given_ratings(actor: User) -> sa.Select[tuple[Rating]]:
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
