"""/api/v1/notifications: my in-app notifications and the unread count."""

from __future__ import annotations

from ..database import atomic
from ..schemas.notifications import MarkReadIn, NotificationPageOut, NotificationQuery, UnreadOut
from ..services import notifications as notification_service
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
