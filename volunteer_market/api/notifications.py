"""/api/v1/notifications: my in-app notifications and the unread count;
/api/v1/me/notification-channels: my channels outside the app;
/api/v1/communities/{id}/webhook: a community's 企业微信 group robot."""

from __future__ import annotations

from typing import Any

from ..database import atomic
from ..models import Area, AreaKind
from ..schemas.notifications import (
    CommunityWebhookIn,
    CommunityWebhookOut,
    MarkReadIn,
    NotificationChannelsIn,
    NotificationChannelsOut,
    NotificationPageOut,
    NotificationQuery,
    UnreadOut,
)
from ..services import areas as area_service
from ..services import notifications as notification_service
from ..services import permissions
from ..services.errors import NotFound
from .common import actor, make_blueprint, paginate

blp = make_blueprint("api_notifications", "/notifications", "In-app notifications")


@blp.route("", methods=["GET"])
@blp.arguments(NotificationQuery, location="query")
@blp.response(200, NotificationPageOut)
def list_notifications(args: dict) -> dict:
    """My notifications, newest first (``unread=true`` for unread only), with ``unread_count``."""
    me = actor()
    stmt = notification_service.list_for(me, unread_only=args.get("unread", False))
    page = paginate(stmt, args["page"], args["per_page"])
    page["unread_count"] = notification_service.unread_count(me)
    return page


@blp.route("/read", methods=["POST"])
@blp.arguments(MarkReadIn, required=False)
@blp.response(200, UnreadOut)
def mark_read(data: dict) -> dict:
    """Mark my notifications read: the given ``ids``, or all when ``ids`` is absent."""
    me = actor()
    with atomic():
        marked = notification_service.mark_read(me, data.get("ids"))
    return {"marked": marked, "unread_count": notification_service.unread_count(me)}


# --- channels outside the app (docs/notifications.md) -----------------------------------

channels_blp = make_blueprint(
    "api_notification_channels", "/me/notification-channels", "My notification channels"
)


@channels_blp.route("", methods=["GET"])
@channels_blp.response(200, NotificationChannelsOut)
def get_channels() -> dict[str, Any]:
    """My channels (``in_app`` always), my e-mail address and whether the server sends e-mail."""
    return notification_service.channels_of(actor())


@channels_blp.route("", methods=["PUT"])
@channels_blp.arguments(NotificationChannelsIn)
@channels_blp.response(200, NotificationChannelsOut)
def put_channels(data: dict[str, Any]) -> dict[str, Any]:
    """Choose my channels; ``email`` needs an address (422 without one, or when the
    server sends no e-mail)."""
    with atomic():
        return notification_service.set_channels(actor(), data["channels"], data["email"])


webhook_blp = make_blueprint("api_community_webhooks", "/communities", "Community group robot")


def _community(community_id: int) -> Area:
    """The community (404 if the caller may not see it, or it is not a community)."""
    community = area_service.get_area(community_id)
    if community.kind != AreaKind.COMMUNITY or not permissions.may(
        actor(), "points_policy.view", community
    ):
        raise NotFound("Community not found.")
    return community


def _webhook_view(community: Area) -> dict[str, Any]:
    view = notification_service.webhook_of(actor(), community)
    return {
        "community_id": community.id,
        **view,
        "failed_messages": notification_service.failed_count([community.id]),
    }


@webhook_blp.route("/<int:community_id>/webhook", methods=["GET"])
@webhook_blp.response(200, CommunityWebhookOut)
def get_webhook(community_id: int) -> dict[str, Any]:
    """Whether the community has a 企业微信 group robot (its URL masked) and how many of
    its group messages failed; its secretary, an officer over it, the admin."""
    return _webhook_view(_community(community_id))


@webhook_blp.route("/<int:community_id>/webhook", methods=["PUT"])
@webhook_blp.arguments(CommunityWebhookIn)
@webhook_blp.response(200, CommunityWebhookOut)
def put_webhook(data: dict[str, Any], community_id: int) -> dict[str, Any]:
    """Set the group robot's URL (https on an allowed host; ``null`` or empty removes it)."""
    with atomic():
        community = _community(community_id)
        notification_service.set_webhook(actor(), community, data["url"])
        return _webhook_view(community)
