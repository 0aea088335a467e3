"""What ratings read of the rated delivery: whether its window is open, its
beneficiaries and participants, and its project's title.

The delivery row lock and its scores, which settlement needs too, live in
``services/deliveries`` (:func:`~volunteer_market.services.deliveries.lock_delivery`,
:func:`~volunteer_market.services.deliveries.scores_of`).
"""

from __future__ import annotations

from datetime import datetime

from ...models import (
    Delivery,
    DeliveryStatus,
    utcnow,
)
from ..delivery_people import people_of


def window_open(delivery: Delivery, now: datetime | None = None) -> bool:
    """Return True while the delivery accepts ratings (awaiting, before the deadline)."""
    now = now or utcnow()
    return delivery.status == DeliveryStatus.AWAITING_RATINGS and now < delivery.rating_deadline


def beneficiary_ids(delivery_id: int) -> list[int]:
    """Return the ids of the delivery's beneficiaries."""
    return list(people_of(delivery_id).beneficiary_ids)


def participant_ids(delivery_id: int) -> list[int]:
    """Return the ids of the delivery's participants."""
    return list(people_of(delivery_id).participant_ids)
