"""What ratings read of the rated delivery: whether its window is open, its
beneficiaries and participants, and its project's title.

The delivery row lock and its scores, which settlement needs too, live in
``services/deliveries`` (:func:`~volunteer_market.services.deliveries.lock_delivery`,
:func:`~volunteer_market.services.deliveries.scores_of`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    Delivery,
    DeliveryBeneficiary,
    DeliveryParticipant,
    DeliveryStatus,
    Project,
    utcnow,
)


def window_open(delivery: Delivery, now: datetime | None = None) -> bool:
    """Return True while the delivery accepts ratings (awaiting, before the deadline)."""
    now = now or utcnow()
    return delivery.status == DeliveryStatus.AWAITING_RATINGS and now < delivery.rating_deadline


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


def project_title(delivery: Delivery) -> str:
    """Return the title of the delivery's project."""
    return db.session.execute(
        sa.select(Project.title).where(Project.id == delivery.project_id)
    ).scalar_one()
