"""Notification pages: my notifications (newest first, mark read) and the unread count
every page's navigation shows."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..models import Area, AreaKind
from ..schemas.common import MAX_ID
from ..schemas.notifications import CommunityWebhookIn, NotificationChannelsIn
from ..services import notifications as notification_service
from ..services import permissions
from ..services import users as user_service
from ..services.errors import DomainError
from ..services.notifications.texts import NOTIFICATION_TEXTS, render_text  # noqa: F401
from .forms import digits, domain_errors, form_errors
from .labels import appeal_status_label
from .paging import page_arg, paginate
from .settings import _render as settings_page_with

bp = Blueprint("web_notifications", __name__)

PER_PAGE = 20


def notification_text(note: Any) -> str:
    """Return the message of a notification in the page's language."""
    return render_text(note.kind, note.params, decision_label=appeal_status_label)


def notification_link(note: Any) -> str | None:
    """Return the page of the object a notification is about, if it has one."""
    if note.object_type == "project" and note.object_id:
        return url_for("web_projects.project", project_id=note.object_id)
    if note.object_type == "need" and note.object_id:
        return url_for("web_needs.needs", _anchor=f"need-{note.object_id}")
    if note.object_type == "evaluation" and note.object_id:
        return url_for("web_evaluations.evaluation", evaluation_id=note.object_id)
    if note.object_type == "redemption" and note.object_id:
        return url_for("web_redemptions.redemption_detail", redemption_id=note.object_id)
    if note.object_type == "delivery" and note.object_id:
        return url_for("web_deliveries.delivery", delivery_id=note.object_id)
    if note.object_type == "rating" and note.object_id and note.kind == "callback.disputed":
        return url_for("web_appeals.new_appeal", rating_id=note.object_id)
    if note.object_type == "appeal" and note.object_id:
        return url_for("web_appeals.appeal", appeal_id=note.object_id)
    return None


@bp.app_context_processor
def _notification_globals() -> dict[str, Any]:
    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        return notification_service.unread_count(current_user)

    return {"unread_notifications": unread_notifications}


@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def notifications() -> ResponseReturnValue:
    """My notifications, newest first; POST marks them read (all, or one ``id``)."""
    if request.method == "POST":
        one = digits(request.form.get("id", ""))
        # No id: all of them. An id beyond any stored one matches nothing.
        ids = None if one is None else [one] if one <= MAX_ID else []
        with atomic():
            notification_service.mark_read(current_user, ids)
        return redirect(url_for("web_notifications.notifications"))
    page = paginate(notification_service.list_for(current_user), page_arg(), PER_PAGE)
    return render_template(
        "notifications/notifications.html",
        notes=[(n, notification_text(n), notification_link(n)) for n in page["items"]],
        total=page["total"],
        page=page["page"],
        per_page=PER_PAGE,
        unread=notification_service.unread_count(current_user),
    )


# --- channels outside the app (docs/notifications.md) -----------------------------------


@bp.app_context_processor
def _channel_globals() -> dict[str, Any]:
    def notification_channels() -> dict[str, Any]:
        return notification_service.channels_of(current_user)

    def community_webhook(community: Area) -> dict[str, Any] | None:
        """The community's group robot (masked) for those who may set it, else None."""
        if not permissions.may(current_user, "community.webhook_manage", community):
            return None
        return {
            **notification_service.webhook_of(current_user, community),
            "failed_messages": notification_service.failed_count([community.id]),
        }

    return {"notification_channels": notification_channels, "community_webhook": community_webhook}


@bp.route("/profile/notification-channels", methods=["POST"])
@login_required
def save_channels() -> ResponseReturnValue:
    """Choose my channels (the profile page's form): e-mail on or off, its address."""
    body = {
        "channels": ["in_app"] + (["email"] if request.form.get("email_on") == "1" else []),
        "email": request.form.get("email", "").strip() or None,
    }
    try:
        data = NotificationChannelsIn().load(body)
        with atomic():
            notification_service.set_channels(current_user, data["channels"], data["email"])
    except ValidationError as exc:
        return _profile(form_errors(exc)), 422
    except DomainError as exc:
        return _profile(domain_errors(exc)), exc.status
    flash(_("通知方式已保存。"), "success")
    return redirect(url_for("web_main.profile", _anchor="notification-channels"))


def _profile(errors: dict[str, list[str]]) -> str:
    me = user_service.present_user(current_user, current_user)
    return render_template("profile.html", me=me, errors=errors)


@bp.route("/communities/<int:community_id>/settings/webhook", methods=["POST"])
@login_required
def save_webhook(community_id: int) -> ResponseReturnValue:
    """Set or remove the community's group-robot URL (the settings page's form)."""
    community = db.session.get(Area, community_id)
    if community is None or community.kind != AreaKind.COMMUNITY:
        abort(404)
    if not permissions.may(current_user, "points_policy.view", community):
        abort(404)
    if not permissions.may(current_user, "community.webhook_manage", community):
        abort(403)
    try:
        data = CommunityWebhookIn().load({"url": request.form.get("url", "")})
        with atomic():
            view = notification_service.set_webhook(current_user, community, data["url"])
    except ValidationError as exc:
        return settings_page_with(community, None, form_errors(exc)), 422
    except DomainError as exc:
        return settings_page_with(community, None, domain_errors(exc)), exc.status
    flash(_("群机器人已保存。") if view["configured"] else _("群机器人已删除。"), "success")
    return redirect(
        url_for("web_settings.settings_page", community_id=community.id, _anchor="webhook")
    )
