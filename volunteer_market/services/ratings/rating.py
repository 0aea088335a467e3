"""Recording ratings: a beneficiary rates (or proxy staff rate for them), a resident
rates with a code or QR token, a rater changes their rating inside the window, a
participant replies once. The last beneficiary's rating settles the delivery in the
same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    Delivery,
    DeliveryBeneficiary,
    DeliveryStatus,
    Rating,
    RatingReply,
    Settlement,
    User,
    utcnow,
)
from .. import audit, ledger, outbox, permissions
from .. import settlement as settlement_service
from ..deliveries import lock_delivery, project_title, scores_of
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from .codes import find_code
from .input import InvalidRatingCode, clean_score, clean_text
from .state import beneficiary_ids, participant_ids

_UNSET: Any = object()


@dataclass
class Rated:
    """A recorded rating and, when it completed the set, the automatic settlement."""

    rating: Rating
    delivery: Delivery
    settlement: Settlement | None = None


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


def _rating_of(delivery_id: int, beneficiary_id: int) -> Rating | None:
    return db.session.execute(
        sa.select(Rating)
        .where(Rating.delivery_id == delivery_id, Rating.beneficiary_id == beneficiary_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


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
    if permissions.is_recorder_or_participant(actor.id, delivery):
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
    return _record(
        actor,
        delivery.id,
        beneficiary_id,
        score,
        text,
        via_code=False,
        now=now,
        community_id=delivery.community_id,
    )


def _community_of(delivery_id: int) -> int | None:
    """The community of a delivery (never changes, so read without a lock)."""
    return db.session.execute(
        sa.select(Delivery.community_id).where(Delivery.id == delivery_id)
    ).scalar_one_or_none()


def _record(
    entered_by: User,
    delivery_id: int,
    beneficiary_id: int,
    score: int,
    comment: str | None,
    *,
    via_code: bool,
    now: datetime,
    community_id: int | None = None,
) -> Rated:
    """Insert the rating under the locks, use up the code, audit, notify, maybe settle.

    ``community_id``: the delivery's, when the caller has the delivery loaded (a
    delivery's community never changes); else read here."""
    # Lock order: the head of the delivery's community chain first (the rating may
    # settle and post there), then the delivery row; every rating, settlement and
    # appeal of the delivery takes the same head, so they run one after another.
    ledger.lock_head(community_id if community_id is not None else _community_of(delivery_id))
    delivery = lock_delivery(delivery_id)
    _refuse_closed_or_rated(delivery, entered_by, beneficiary_id, via_code=via_code, now=now)
    _use_up_code(delivery_id, beneficiary_id, via_code=via_code, now=now)
    rating = _insert_rating(
        entered_by, delivery_id, beneficiary_id, score, comment, via_code=via_code, now=now
    )
    _announce_rating(entered_by, delivery, rating)
    result = Rated(rating, delivery)
    beneficiaries = beneficiary_ids(delivery_id)
    scores = scores_of(delivery_id)  # under the delivery's lock: final for the settlement
    if beneficiaries and len(scores) == len(beneficiaries):
        result.settlement = settlement_service.settle_locked(None, delivery, now=now, scores=scores)
    return result


def _refuse_closed_or_rated(
    delivery: Delivery, entered_by: User, beneficiary_id: int, *, via_code: bool, now: datetime
) -> None:
    """Refuse a closed window or a second rating (a code gets the one generic 422)."""
    try:
        _require_open(delivery, now)
    except Conflict:
        if via_code:
            raise InvalidRatingCode() from None
        raise
    existing = _rating_of(delivery.id, beneficiary_id)
    if existing is not None:
        if via_code:
            raise InvalidRatingCode()
        who = "You have" if beneficiary_id == entered_by.id else "This beneficiary has"
        raise Conflict(
            f"{who} already rated this delivery (rating {existing.id}); "
            "change that rating instead.",
            rating_id=existing.id,
        )


def _use_up_code(delivery_id: int, beneficiary_id: int, *, via_code: bool, now: datetime) -> None:
    """Mark the beneficiary's code used (any rating uses it up); a used code refuses."""
    used = cast(
        sa.CursorResult[Any],
        db.session.execute(
            sa.update(DeliveryBeneficiary)
            .where(
                DeliveryBeneficiary.delivery_id == delivery_id,
                DeliveryBeneficiary.user_id == beneficiary_id,
                DeliveryBeneficiary.code_used_at.is_(None),
            )
            .values(code_used_at=now)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if via_code and not used:
        raise InvalidRatingCode()


def _insert_rating(
    entered_by: User,
    delivery_id: int,
    beneficiary_id: int,
    score: int,
    comment: str | None,
    *,
    via_code: bool,
    now: datetime,
) -> Rating:
    """Insert the rating; the UNIQUE ``(delivery_id, beneficiary_id)`` is the backstop.

    No savepoint (two statements fewer, issue 21): the caller checked for an existing
    rating under the delivery's lock, so the UNIQUE can only fire when that check was
    bypassed, and then the whole transaction ends -- every caller lets the error leave
    its ``atomic()``, which rolls back the used-up code with it
    (``tests/ratings/test_delivery_people.py::test_the_unique_backstop_without_a_savepoint``).
    """
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
    db.session.add(rating)
    try:
        db.session.flush()
    except IntegrityError:
        if via_code:
            raise InvalidRatingCode() from None
        raise Conflict("This delivery has already been rated for this beneficiary.") from None
    return rating


def _announce_rating(entered_by: User, delivery: Delivery, rating: Rating) -> None:
    """Audit the rating, tell the participants (no rater), tell a proxied beneficiary."""
    audit.record(
        entered_by,
        "rating.create",
        "rating",
        rating.id,
        area_id=delivery.community_id,
        detail={
            "delivery_id": delivery.id,
            "beneficiary_id": rating.beneficiary_id,
            "score": rating.score,
            "is_proxy": rating.is_proxy,
            "via_code": rating.via_code,
        },
    )
    title = project_title(delivery)
    _notify_participants(delivery, "rating.received", rating, title)
    if rating.is_proxy:
        audit.notify(
            rating.beneficiary_id,
            "rating.proxy_entered",
            object_type="delivery",
            object_id=delivery.id,
            params={"title": title, "score": rating.score, "by": entered_by.display_name},
        )


def _notify_participants(delivery: Delivery, kind: str, rating: Rating, title: str) -> None:
    """Tell the participants about a rating: score and whether there is a comment, no rater."""
    recipients = participant_ids(delivery.id)
    outbox.prefetch_preferences(recipients)
    for user_id in recipients:
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


def rate_by_code(
    *,
    code: str | None = None,
    token: str | None = None,
    score: Any,
    comment: Any = None,
    submitted_by: User | None = None,
    now: datetime | None = None,
) -> Rated:
    """Record a rating from the one-time code or QR token, without a password.

    The code identifies both the beneficiary and the delivery and works once.
    ``submitted_by`` is the user signed in where the code was typed, if any: a
    participant or the recorder of the delivery is refused (403).

    :raises ValidationFailed: bad score or comment (the code is not looked at).
    :raises InvalidRatingCode: wrong, used or expired code/token (422, generic).
    :raises Forbidden: ``submitted_by`` recorded or served in the delivery.
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
    if submitted_by is not None:
        delivery = db.session.get(Delivery, row.delivery_id)
        if delivery is None or permissions.is_recorder_or_participant(submitted_by.id, delivery):
            raise Forbidden("Participants never rate their own delivery.", action="rating.rate")
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
    :raises Conflict: window closed, delivery settled or cancelled; a new comment for
        one the secretary hid (it is kept as it was).
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
    if rating.comment_hidden_at is not None and new_comment != rating.comment:
        # a hidden comment is kept as it was (services/moderation.py); the score may change
        raise Conflict(
            "This comment was hidden by the community's secretary; it cannot be changed."
        )
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
    title = project_title(delivery)
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
        params={"title": project_title(delivery), "member": actor.display_name},
    )
    return row
