"""A community's 企业微信 group-robot webhook: set by those who run the community.

The URL is a secret (whoever holds it can post to the group): it is stored as given,
shown masked (:func:`mask_url`) to those who may change it, never returned in full,
never logged, never in an audit entry. Only ``https`` URLs on the hosts of
``WECOM_WEBHOOK_HOSTS`` are accepted (no userinfo), so the server never posts to an
address of the secretary's choosing inside the network.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from ...extensions import db
from ...models import MAX_WEBHOOK_URL, Area, CommunityWebhook, User, utcnow
from .. import audit, permissions
from ..errors import ValidationFailed

_BAD_URL = "Not an allowed webhook URL."


def mask_url(url: str) -> str:
    """Return ``url`` masked for display: scheme, host and its last four characters."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…{url[-4:]}"


def webhook_of(actor: User, community: Area) -> dict[str, Any]:
    """Return whether ``community`` has a webhook and its masked URL.

    :raises Forbidden: unless the actor runs the community or is the admin.
    """
    permissions.require(actor, "community.webhook_manage", community)
    hook = db.session.get(CommunityWebhook, community.id)
    return {
        "configured": hook is not None,
        "url_masked": mask_url(hook.url) if hook is not None else None,
        "updated_at": hook.updated_at if hook is not None else None,
    }


def check_url(url: str) -> str:
    """Return ``url`` stripped if it is an allowed group-robot URL.

    :raises ValidationFailed: too long, not https (or http where allowed), another host,
        userinfo, whitespace or control characters.
    """
    url = url.strip()
    error = ValidationFailed(_BAD_URL, errors={"url": [_BAD_URL]})
    if not url or len(url) > MAX_WEBHOOK_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise error
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise error from exc
    schemes = {"https"} | (
        {"http"} if current_app.config.get("WECOM_WEBHOOK_ALLOW_HTTP") else set()
    )
    hosts = {h.lower() for h in current_app.config.get("WECOM_WEBHOOK_HOSTS", ())}
    if (
        parts.scheme not in schemes
        or (parts.hostname or "").lower() not in hosts
        or parts.username is not None
        or parts.password is not None
        or (port is not None and not 0 < port < 65536)
    ):
        raise error
    return url


def set_webhook(actor: User, community: Area, url: str | None) -> dict[str, Any]:
    """Set (or, with ``None``/empty, remove) ``community``'s group-robot URL.

    :raises Forbidden: unless the actor runs the community or is the admin.
    :raises ValidationFailed: not an allowed URL (:func:`check_url`).
    """
    permissions.require(actor, "community.webhook_manage", community)
    hook = db.session.get(CommunityWebhook, community.id)
    if url is None or not url.strip():
        if hook is not None:
            db.session.delete(hook)
        audit.record(actor, "community.webhook_remove", "area", community.id, area_id=community.id)
        db.session.flush()
        return webhook_of(actor, community)
    clean = check_url(url)
    if hook is None:
        hook = CommunityWebhook(community_id=community.id, url=clean)
        db.session.add(hook)
    hook.url, hook.updated_by_id, hook.updated_at = clean, actor.id, utcnow()
    audit.record(actor, "community.webhook_set", "area", community.id, area_id=community.id)
    db.session.flush()
    return webhook_of(actor, community)
