"""Rating slips: the one way a resident without an account session gets a rating code.

The right to rate belongs to the resident, and the secret that proves it never passes
through a participant's hands or screen. So recording a delivery makes no code; the
secretary of the delivery's community, or a grid worker of it who did not serve in the
delivery (``delivery.slips``), issues a printable slip per beneficiary who has not
rated yet: a fresh six-digit code and a QR token, shown once to the issuer, who hands
the slip to the resident. Issuing again voids the slip that was out (a lost slip is
re-issued, never copied). Only digests are stored, with who issued them and when;
:func:`rating_code_hash` lookups refuse a code issued by a participant of its delivery
(``ratings/codes.py``), the backstop should a grant change after issuing.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from ...extensions import db
from ...models import Delivery, DeliveryBeneficiary, DeliveryStatus, User, utcnow
from .. import audit, permissions
from ..errors import Conflict, ValidationFailed
from .codes import RatingCode, new_rating_code, rating_code_hash, rating_token_hash
from .reading import lock_delivery


def issue_slips(
    actor: User | None,
    delivery: Delivery,
    *,
    user_id: int | None = None,
    now: datetime | None = None,
) -> list[RatingCode]:
    """Issue a slip (fresh code and QR token) to each beneficiary who has not rated.

    ``user_id`` limits it to one beneficiary (a lost slip). ``actor`` None is the
    system (tests, the demo), never a request.

    :raises Forbidden: not the secretary or a grid worker of the community, or a
        participant or the recorder of the delivery (in any role).
    :raises ValidationFailed: ``user_id`` is not a beneficiary of the delivery.
    :raises Conflict: the delivery is settled, cancelled or its window closed; every
        (or that) beneficiary has already rated.
    """
    now = now or utcnow()
    if actor is not None:
        permissions.require(actor, "delivery.slips", delivery)
    delivery = lock_delivery(delivery.id)
    if delivery.status != DeliveryStatus.AWAITING_RATINGS or now >= delivery.rating_deadline:
        raise Conflict("This delivery takes no more ratings; no slip can be issued.")
    rows = list(
        db.session.execute(
            sa.select(DeliveryBeneficiary, User.display_name)
            .join(User, User.id == DeliveryBeneficiary.user_id)
            .where(DeliveryBeneficiary.delivery_id == delivery.id)
            .order_by(DeliveryBeneficiary.id)
            .execution_options(populate_existing=True)
        ).all()
    )
    if user_id is not None:
        rows = [r for r in rows if r[0].user_id == user_id]
        if not rows:
            raise ValidationFailed(
                "user_id must be a beneficiary of this delivery.",
                errors={"user_id": ["Not a beneficiary of this delivery."]},
            )
    open_rows = [(b, name) for b, name in rows if b.code_used_at is None]
    if not open_rows:
        raise Conflict("Every beneficiary has already rated this delivery.")
    codes: list[RatingCode] = []
    taken: set[str] = set()
    for row, name in open_rows:
        code = new_rating_code(now, taken)
        token = secrets.token_urlsafe(32)
        row.rating_code_hash = rating_code_hash(code)
        row.rating_token_hash = rating_token_hash(token)
        row.code_issued_by_id = actor.id if actor is not None else None
        row.code_issued_at = now
        codes.append(RatingCode(row.user_id, name, code, token))
    db.session.flush()
    if actor is not None:
        audit.record(
            actor,
            "delivery.slips_issued",
            "delivery",
            delivery.id,
            area_id=delivery.community_id,
            detail={"beneficiaries": [c.user_id for c in codes]},
        )
    return codes
