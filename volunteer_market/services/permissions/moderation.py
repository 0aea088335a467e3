"""Rules of comment moderation and call-backs (回访) of proxy ratings.

* ``rating.report`` -- a member who served in the rated delivery reports its comment;
* ``rating.moderate`` -- the secretary of the delivery's community hides or unhides a
  comment and dismisses reports (target :class:`RatingOversight`);
* ``rating.hidden_view`` -- who still sees a hidden comment (marked hidden): the
  community's secretary;
* ``callback.record`` -- the community's secretary records a call-back of a proxy
  rating (target :class:`RatingOversight`);
* ``moderation.queue`` / ``callback.queue`` -- has the page: a secretary somewhere;
  ``moderation.community`` -- reads a community's queue and call-back sample.

Both ``rating.moderate`` and ``callback.record`` are guarded by the no-self-dealing rule
(``self_dealing.py``): the beneficiaries of a :class:`RatingOversight` are the
delivery's participants and recorder plus whoever rated (the resident, the proxy who
entered it), so nobody judges a comment or a call-back of a delivery he served in or
a rating he gave or entered himself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...extensions import db
from ...models import Area, AreaKind, Delivery, Rating, Role, User
from .core import grant_areas, rule
from .projects import in_community
from .ratings import is_participant
from .self_dealing import delivery_parties, resolver


@dataclass(frozen=True)
class RatingOversight:
    """A rating as a third party (the secretary) judges it: moderation, call-back."""

    rating: Rating


@resolver(RatingOversight)
def oversight_parties(target: RatingOversight) -> set[int]:
    """The delivery's participants and recorder, the resident and who entered it."""
    rating = target.rating
    return delivery_parties(rating.delivery_id) | {rating.beneficiary_id, rating.entered_by_id}


def _community_of(rating: Rating) -> int | None:
    delivery = db.session.get(Delivery, rating.delivery_id)
    return delivery.community_id if delivery is not None else None


@rule("rating.report")
def _rating_report(actor: User, rating: Rating) -> bool:
    """A member who served in the rated delivery."""
    return is_participant(actor.id, rating.delivery_id)


@rule("rating.moderate")
def _rating_moderate(actor: User, target: RatingOversight) -> bool:
    """The secretary of the delivery's community (never a party: the guard)."""
    cid = _community_of(target.rating)
    return cid is not None and in_community(actor, Role.SECRETARY, cid)


@rule("rating.hidden_view")
def _rating_hidden_view(actor: User, delivery: Delivery) -> bool:
    """See a hidden comment (marked hidden): the secretary of the delivery's community."""
    return in_community(actor, Role.SECRETARY, delivery.community_id)


@rule("callback.record")
def _callback_record(actor: User, target: RatingOversight) -> bool:
    """The secretary of the delivery's community (never a party: the guard)."""
    cid = _community_of(target.rating)
    return cid is not None and in_community(actor, Role.SECRETARY, cid)


@rule("moderation.community")
def _moderation_community(actor: User, community: Area) -> bool:
    """Read a community's reported comments and call-back sample: its secretary."""
    return community.kind == AreaKind.COMMUNITY and in_community(
        actor, Role.SECRETARY, community.id
    )


@rule("moderation.queue")
def _moderation_queue(actor: User, _target: Any) -> bool:
    """Has the moderation and call-back pages: a secretary somewhere."""
    return bool(grant_areas(actor, [Role.SECRETARY]))
