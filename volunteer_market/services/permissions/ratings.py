"""Rules of ratings and settlement.

Ratings belong to the beneficiaries (residents) of a delivery; participants never rate their
own delivery. Staff of the delivery's community (grid workers, the secretary) may enter a
proxy rating for a beneficiary without a phone. Only the secretary and the officers above
the community see who gave which score.
"""

from __future__ import annotations

from typing import Any

from ...extensions import db
from ...models import Area, Delivery, Rating, Role, User
from ..delivery_people import people_of
from .core import (
    grant_areas,
    holds,
    rule,
)
from .projects import in_community


def is_participant(user_id: int, delivery_id: int) -> bool:
    """Return True if ``user_id`` served in the delivery."""
    return user_id in people_of(delivery_id).participant_ids


def is_beneficiary(user_id: int, delivery_id: int) -> bool:
    """Return True if ``user_id`` received the service of the delivery."""
    return user_id in people_of(delivery_id).beneficiary_ids


@rule("rating.rate")
def _rating_rate(actor: User, delivery: Delivery) -> bool:
    """Rate for oneself: a beneficiary of the delivery, never its recorder or a participant."""
    return is_beneficiary(actor.id, delivery.id) and not is_recorder_or_participant(
        actor.id, delivery
    )


@rule("rating.proxy")
def _rating_proxy(actor: User, delivery: Delivery) -> bool:
    """Enter a rating for a beneficiary: a grid worker or the secretary of the
    delivery's community, who neither recorded nor served in it (flagged ``is_proxy``)."""
    return in_community(
        actor, [Role.GRID_WORKER, Role.SECRETARY], delivery.community_id
    ) and not is_recorder_or_participant(actor.id, delivery)


def is_recorder_or_participant(user_id: int, delivery: Delivery) -> bool:
    """Return True if ``user_id`` recorded the delivery or served in it."""
    return user_id == delivery.recorded_by_id or is_participant(user_id, delivery.id)


@rule("delivery.slips")
def _delivery_slips(actor: User, delivery: Delivery) -> bool:
    """Issue rating slips (the residents' codes): the secretary or a grid worker of the
    delivery's community who neither recorded nor served in it, in any role."""
    return in_community(
        actor, [Role.GRID_WORKER, Role.SECRETARY], delivery.community_id
    ) and not is_recorder_or_participant(actor.id, delivery)


@rule("rating.change")
def _rating_change(actor: User, rating: Rating) -> bool:
    """The beneficiary the rating belongs to, or staff who may enter proxy ratings."""
    delivery = db.session.get(Delivery, rating.delivery_id)
    if delivery is None or is_recorder_or_participant(actor.id, delivery):
        return False
    return actor.id == rating.beneficiary_id or _rating_proxy(actor, delivery)


@rule("rating.reply")
def _rating_reply(actor: User, rating: Rating) -> bool:
    """A participant of the rated delivery."""
    return is_participant(actor.id, rating.delivery_id)


@rule("rating.identities")
def _rating_identities(actor: User, delivery: Delivery) -> bool:
    """See who gave which score: the community's secretary, officers above it."""
    if in_community(actor, Role.SECRETARY, delivery.community_id):
        return True
    area = db.session.get(Area, delivery.community_id)
    return area is not None and holds(actor, Role.OFFICER, area)


@rule("rating.inbox")
def _rating_inbox(actor: User, _target: Any) -> bool:
    """Has a ratings page: members (ratings received) and residents (to rate)."""
    return any(g.role in (Role.MEMBER, Role.RESIDENT) for g in actor.grants)


@rule("settlement.settle")
def _settlement_settle(actor: User, delivery: Delivery) -> bool:
    """The secretary of the delivery's community, never for a delivery they served in."""
    return in_community(actor, Role.SECRETARY, delivery.community_id) and not is_participant(
        actor.id, delivery.id
    )


@rule("settlement.queue")
def _settlement_queue(actor: User, _target: Any) -> bool:
    """Has a settlement queue: a secretary somewhere."""
    return bool(grant_areas(actor, [Role.SECRETARY]))
