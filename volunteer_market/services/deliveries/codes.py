"""Rating codes of a delivery's beneficiaries: the six-digit code and the QR token,
their stored digests, allocation of a free code, and the lookups that open a rating.

Only ``sha256`` hex digests are stored; the raw values are returned once, to the
recorder. A code is unique among unused codes of deliveries whose rating window is
still open, and :func:`find_beneficiary_by_code` applies the same condition.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import segno
import sqlalchemy as sa

from ...extensions import db
from ...models import Delivery, DeliveryBeneficiary, DeliveryStatus, utcnow
from ..errors import Conflict

CODE_DIGITS = 6


@dataclass(frozen=True)
class RatingCode:
    """A beneficiary's one-time code, returned once to the recorder."""

    user_id: int
    display_name: str
    code: str
    token: str


def rating_code_hash(code: str) -> str:
    """Return the stored digest of a six-digit rating code."""
    return hashlib.sha256(code.encode()).hexdigest()


def rating_token_hash(token: str) -> str:
    """Return the stored digest of a QR rating token."""
    return hashlib.sha256(token.encode()).hexdigest()


def qr_svg_data_uri(url: str) -> str:
    """Return a QR code of ``url`` as an SVG ``data:`` URI (allowed by the CSP's img-src)."""
    return segno.make(url, error="m").svg_data_uri(scale=4, border=2)


def new_rating_code(now: datetime, taken: set[str]) -> str:
    """Return a six-digit code not among the unused codes of open deliveries.

    ``taken`` holds the digests already given out in this recording; the new one is
    added to it.
    """
    for _attempt in range(50):
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        digest = rating_code_hash(code)
        if digest in taken:
            continue
        clash = db.session.execute(
            sa.select(DeliveryBeneficiary.id)
            .join(Delivery, Delivery.id == DeliveryBeneficiary.delivery_id)
            .where(
                DeliveryBeneficiary.rating_code_hash == digest,
                DeliveryBeneficiary.code_used_at.is_(None),
                Delivery.rating_deadline > now,
            )
            .limit(1)
        ).first()
        if clash is None:
            taken.add(digest)
            return code
    raise Conflict("Could not allocate a rating code; try again.")  # pragma: no cover


def find_beneficiary_by_code(
    code: str, *, now: datetime | None = None
) -> DeliveryBeneficiary | None:
    """Return the beneficiary row of an unused code whose rating window is open."""
    now = now or utcnow()
    return db.session.execute(
        sa.select(DeliveryBeneficiary)
        .join(Delivery, Delivery.id == DeliveryBeneficiary.delivery_id)
        .where(
            DeliveryBeneficiary.rating_code_hash == rating_code_hash(code),
            DeliveryBeneficiary.code_used_at.is_(None),
            Delivery.rating_deadline > now,
            Delivery.status == DeliveryStatus.AWAITING_RATINGS,
        )
    ).scalar_one_or_none()


def find_beneficiary_by_token(token: str) -> DeliveryBeneficiary | None:
    """Return the beneficiary row of a QR token (used or not; the caller checks)."""
    return db.session.execute(
        sa.select(DeliveryBeneficiary).where(
            DeliveryBeneficiary.rating_token_hash == rating_token_hash(token)
        )
    ).scalar_one_or_none()
