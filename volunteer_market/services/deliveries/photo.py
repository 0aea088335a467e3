"""The session photo of a delivery: the recorder or the project owner may attach or
replace it until the delivery is settled or cancelled.
"""

from __future__ import annotations

from ...extensions import db
from ...models import Delivery, DeliveryStatus, User
from .. import audit, permissions
from ..errors import Conflict, Forbidden
from ..projects import get_visible_project


def check_photo_allowed(actor: User, delivery: Delivery) -> None:
    """Raise unless ``actor`` may change the photo of ``delivery`` now.

    :raises Forbidden: neither the recorder nor the project owner.
    :raises Conflict: the delivery is settled or cancelled.
    """
    project = get_visible_project(actor, delivery.project_id)
    if actor.id != delivery.recorded_by_id and not permissions.may(actor, "project.own", project):
        raise Forbidden("Only the recorder or the project owner may change the photo.")
    if delivery.status != DeliveryStatus.AWAITING_RATINGS:
        raise Conflict(f"A delivery that is {delivery.status.value} cannot be changed.")


def set_photo(actor: User, delivery: Delivery, name: str | None) -> Delivery:
    """Attach (or replace) the session photo: the recorder or the project owner, before settlement.

    :raises Forbidden: anyone else.
    :raises Conflict: the delivery is settled or cancelled.
    """
    check_photo_allowed(actor, delivery)
    delivery.photo_path = name
    db.session.flush()
    audit.record(actor, "delivery.photo", "delivery", delivery.id, area_id=delivery.community_id)
    return delivery
