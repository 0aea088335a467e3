"""Absolute links to pages that both edges hand out, as text and as QR codes.

* Rating slips: ``GET /api/v1/deliveries/{id}/rating-slips`` and the printable slips
  page show each beneficiary's raw code, the link a beneficiary opens to rate, and
  that link as a QR code -- once, to the secretary or a grid worker who did not serve
  in the delivery, never stored. Recording a delivery shows no code at all.
* A held redemption's pickup link: the fulfilment page with the code filled in, which
  the secretary's phone opens by scanning the member's QR code.

The links are absolute, built from the request's host, so they live here rather than
in ``services/``.
"""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from ..services import deliveries as delivery_service


def rating_url(token: str) -> str:
    """Return the absolute URL a beneficiary opens to rate (the QR code's content)."""
    return f"{request.host_url}rate/{token}"


def rating_slips(codes: list[delivery_service.RatingCode]) -> list[dict[str, Any]]:
    """Return the slips' raw codes with their URLs and QR codes (shown once, never stored)."""
    out = []
    for rc in codes:
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


def pickup_url(code: str) -> str:
    """Return the absolute URL of the fulfilment page with ``code`` filled in."""
    return url_for("web_redemptions.fulfil_page", code=code, _external=True)


def check_in_link(session_id: int, code: str) -> dict[str, str]:
    """Return a session's check-in page with the current code filled in, as text and as
    the QR code the owner shows at the venue (the code rotates: see
    ``services/sessions/attendance.py``)."""
    url = f"{request.host_url}sessions/{session_id}/check-in?code={code}"
    return {"url": url, "qr_svg": delivery_service.qr_svg_data_uri(url)}


def calendar_feed_url(token: str) -> str:
    """Return the absolute URL of a person's private calendar feed."""
    return f"{request.host_url}calendar/{token}.ics"
