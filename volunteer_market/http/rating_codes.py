"""The one-time rating codes of a recorded delivery, as the recorder's screen shows them.

Both ``POST /api/v1/deliveries`` and the page that records a delivery show each
beneficiary's raw code, the link a beneficiary opens to rate, and that link as a QR
code -- once, never stored. The link is absolute, built from the request's host, so it
lives here rather than in ``services/deliveries``.
"""

from __future__ import annotations

from typing import Any

from flask import request

from ..services import deliveries as delivery_service


def rating_url(token: str) -> str:
    """Return the absolute URL a beneficiary opens to rate (the QR code's content)."""
    return f"{request.host_url}rate/{token}"


def rating_codes(recorded: delivery_service.Recorded) -> list[dict[str, Any]]:
    """Return the raw codes with their URLs and QR codes (shown once, never stored)."""
    out = []
    for rc in recorded.rating_codes:
        url = rating_url(rc.token)
        out.append(
            {
                "user_id": rc.user_id,
                "display_name": rc.display_name,
                "code": rc.code,
                "url": url,
                "qr_svg": delivery_service.qr_svg_data_uri(url),
            }
        )
    return out
