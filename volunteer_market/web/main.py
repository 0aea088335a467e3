"""Home and profile pages."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from ..database import atomic
from ..http.links import calendar_feed_url
from ..http.throttles import mark_login_failed, password_check_throttle
from ..services import passwords
from ..services import ratings as rating_service
from ..services import sessions as session_service
from ..services import users as user_service
from ..services.errors import ValidationFailed

bp = Blueprint("web_main", __name__)


@bp.route("/")
@login_required
def home() -> ResponseReturnValue:
    """Show the signed-in user's start page (with "等您评价": what I may still rate)."""
    pending = rating_service.to_rate(current_user)
    upcoming = session_service.upcoming_of(current_user)[:10]
    return render_template(
        "home.html",
        me=user_service.present_user(current_user, current_user),
        pending=pending,
        pending_titles=rating_service.titles(pending),
        upcoming=upcoming,
        upcoming_titles=session_service.project_titles(upcoming),
    )


@bp.route("/profile", methods=["GET", "POST"])
@login_required
@password_check_throttle
def profile() -> ResponseReturnValue:
    """Show my profile; on POST change my language or password."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        action = request.form.get("action")
        if action == "language":
            lang = request.form.get("locale")
            if lang not in ("zh_CN", "en"):
                errors["locale"] = [_("请选择一种语言。")]
            else:
                with atomic():
                    current_user.locale = lang
                session["lang"] = lang
                flash(_("已保存。"), "success")
                return redirect(url_for("web_main.profile"))
        elif action == "password":
            old = request.form.get("old_password", "")
            new = request.form.get("new_password", "")
            if not passwords.verify_password(current_user.password_hash, old):
                mark_login_failed()  # counts with failed logins (throttle.py)
                errors["old_password"] = [_("原密码不正确。")]
            else:
                try:
                    with atomic():
                        user_service.set_password(current_user, current_user, new)
                except ValidationFailed:
                    errors["new_password"] = [_("新密码至少需要 8 个字符。")]
                else:
                    # Every other session and every API token is ended; this browser
                    # stays signed in under the new session version.
                    login_user(current_user._get_current_object())
                    flash(_("密码已修改，其他设备已退出登录。"), "success")
                    return redirect(url_for("web_main.profile"))
        elif action == "calendar_reset":
            with atomic():
                session_service.reset_feed_token(current_user)
            flash(_("已重置日历订阅链接，旧链接已失效。"), "success")
            return redirect(url_for("web_main.profile"))
        else:
            errors["action"] = [_("未知操作。")]
        status = 422
    else:
        status = 200
    me = user_service.present_user(current_user, current_user)
    feed = calendar_feed_url(session_service.feed_token(current_user))
    return render_template("profile.html", me=me, errors=errors, calendar_feed=feed), status
