"""Rating codes and QR tokens, from the rating's side: which beneficiary row a code or
token opens (unused, window open, active account) and what it rates, with nothing
personal. Recording the rating is :func:`.rating.rate_by_code`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...extensions import db
from ...models import Delivery, DeliveryBeneficiary, User, utcnow
from .. import deliveries as delivery_service
from .. import permissions
from ..deliveries import project_title
from .input import CODE_RE, InvalidRatingCode
from .state import window_open


def find_code(
    *, code: str | None = None, token: str | None = None, now: datetime | None = None
) -> DeliveryBeneficiary:
    """Return the beneficiary row a code or QR token opens (unused, window open, on a
    slip issued by someone who neither recorded nor served in the delivery).

    :raises InvalidRatingCode: wrong, used, expired or voided (one generic message), or
        an inactive account.
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
    if row is not None and row.code_issued_by_id is not None:
        # a code never rates a delivery whose participant asked for it
        delivery = db.session.get(Delivery, row.delivery_id)
        if delivery is None or permissions.is_recorder_or_participant(
            row.code_issued_by_id, delivery
        ):
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
        "title": project_title(delivery),
        "started_at": delivery.started_at,
        "ended_at": delivery.ended_at,
        "rating_deadline": delivery.rating_deadline,
    }
