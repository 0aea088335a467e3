"""Pickup codes of redemptions: derive, digest, normalise, allocate, and draw as a QR code.

Eight digits. The database keeps only an HMAC digest (unique among held
redemptions) and a random salt; the member's pages re-derive the code from the salt
and the application key (``PICKUP_CODE_KEY``, default ``SECRET_KEY``), so a copy of
the database alone yields no usable code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

import segno
import sqlalchemy as sa
from flask import current_app

from ...extensions import db
from ...models import Redemption, RedemptionStatus
from ..errors import Conflict

CODE_DIGITS = 8

_CODE_RE = re.compile(rf"^\d{{{CODE_DIGITS}}}$")


def _code_key() -> bytes:
    cfg = current_app.config
    key = cfg.get("PICKUP_CODE_KEY") or cfg["SECRET_KEY"]
    return key.encode() if isinstance(key, str) else bytes(key)


def derive_code(redemption_id: int, salt: str) -> str:
    """Return the pickup code of a redemption (HMAC of its id and salt, 8 digits)."""
    mac = hmac.new(_code_key(), f"pickup:{redemption_id}:{salt}".encode(), hashlib.sha256)
    return f"{int.from_bytes(mac.digest()[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def code_digest(code: str) -> str:
    """Return the stored digest of a pickup code."""
    return hmac.new(_code_key(), f"pickup-code:{code}".encode(), hashlib.sha256).hexdigest()


def normalise_code(raw: Any) -> str | None:
    """Return the eight digits of a typed code (spaces and dashes ignored), or None."""
    if not isinstance(raw, str):
        return None
    code = re.sub(r"[\s-]", "", raw)
    return code if _CODE_RE.match(code) else None


def pickup_code(redemption: Redemption) -> str:
    """Return the redemption's pickup code (show it to its member only)."""
    return derive_code(redemption.id, redemption.code_salt)


def qr_svg_data_uri(text: str) -> str:
    """Return a QR code of ``text`` as an SVG ``data:`` URI (allowed by the CSP)."""
    return segno.make(text, error="m").svg_data_uri(scale=4, border=2)


def new_code(redemption_id: int) -> tuple[str, str, str]:
    """Return ``(salt, code, digest)`` with a code no held redemption uses.

    Runs after the ledger head lock, so no concurrent request can take the same code
    between the check and the insert (the partial UNIQUE index is the backstop).
    """
    for _attempt in range(20):
        salt = secrets.token_hex(16)
        code = derive_code(redemption_id, salt)
        digest = code_digest(code)
        taken = db.session.execute(
            sa.select(Redemption.id).where(
                Redemption.pickup_code_hash == digest, Redemption.status == RedemptionStatus.HELD
            )
        ).first()
        if taken is None:
            return salt, code, digest
    raise Conflict("Could not allocate a pickup code; try again.")  # pragma: no cover
