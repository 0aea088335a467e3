"""Home and profile pages."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user
from werkzeug.wrappers import Response

from ..database import atomic
from ..http.links import calendar_feed_url
from ..http.throttles import mark_login_failed, password_check_throttle
from ..services import home as home_service
from ..services import passwords
from ..services import sessions as session_service
from ..services import users as user_service
from ..services.errors import ValidationFailed
from .navigation import TEXT_COOKIE

bp = Blueprint("web_main", __name__)

#: The secretary's to-do items: ``(count key, label, page endpoint)``; each is shown
#: with its count from ``services/home.py`` and a link to the page where it is done.
SECRETARY_TODOS = (
    ("reviews", _l("待审核项目"), "web_projects.review_queue"),
    ("settlements", _l("待结算服务"), "web_ratings.queue"),
    ("redemptions", _l("待核销兑换"), "web_redemptions.fulfil_page"),
    ("registrations", _l("待审核报到"), "web_registrations.queue"),
    ("appeals", _l("未决申诉"), "web_appeals.appeals"),
    ("objections", _l("待答复异议"), "web_evaluations.evaluation_list"),
    ("reports", _l("待处理评语举报"), "web_moderation.queue"),
    ("needs", _l("待派单需求"), "web_needs.needs"),
)
OFFICER_TODOS = (
    ("communities", _l("辖区社区"), "web_dashboards.choose"),
    ("appeals", _l("待裁决申诉"), "web_appeals.appeals"),
    ("objections", _l("待答复异议"), "web_evaluations.evaluation_list"),
)
GRID_TODOS = (
    ("residents", _l("网格居民"), None),
    ("needs", _l("居民未完成的需求"), "web_needs.needs"),
    ("proxy", _l("可代为评价的服务"), None),
)
ADMIN_TODOS = (
    ("users", _l("在用账号"), "web_admin.users"),
    ("communities", _l("社区"), "web_admin.areas"),
    ("areas", _l("区域"), "web_admin.areas"),
)


@bp.route("/")
@login_required
def home() -> ResponseReturnValue:
    """Show the signed-in user's home (工作台): one part per role held, and the sessions
    the person signed up for."""
    upcoming = session_service.upcoming_of(current_user)[:10]
    return render_template(
        "home.html",
        me=user_service.present_user(current_user, current_user),
        parts=home_service.home(current_user),
        upcoming=upcoming,
        upcoming_titles=session_service.project_titles(upcoming),
        todos={
            "secretary": SECRETARY_TODOS,
            "officer": OFFICER_TODOS,
            "grid": GRID_TODOS,
            "admin": ADMIN_TODOS,
        },
    )


#: The large-text choices of the form (``size``) and what each stores.
TEXT_SIZES = {"large": True, "normal": False}
#: How long a browser remembers the large-text mode (one year, in seconds).
TEXT_COOKIE_AGE = 365 * 24 * 3600


def _local_path(value: str | None) -> str | None:
    """Return ``value`` if it is a path of this site (``/...``, not ``//host``), else None."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


def _remember_text_size(resp: Response, large: bool) -> Response:
    resp.set_cookie(
        TEXT_COOKIE,
        "large" if large else "normal",
        max_age=TEXT_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return resp


@bp.route("/text-size", methods=["POST"])
def text_size() -> ResponseReturnValue:
    """Switch the large-text mode (大字) on or off: stored on the signed-in person and
    remembered by this browser (a cookie, for pages without sign-in such as /rate);
    then back to the page it was switched on (Post/Redirect/Get)."""
    size = request.form.get("size")
    if size not in TEXT_SIZES:
        return render_template(
            "error.html",
            status=400,
            title=_("请求有误"),
            detail=_("请选择“大字”或“标准字”。"),
        ), 400
    large = TEXT_SIZES[size]
    if current_user.is_authenticated:
        with atomic():
            current_user.large_text = large
    back = _local_path(request.form.get("next")) or url_for("web_main.home")
    return _remember_text_size(redirect(back), large)


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
        elif action == "text_size":
            size = request.form.get("size")
            if size not in TEXT_SIZES:
                errors["size"] = [_("请选择“大字”或“标准字”。")]
            else:
                with atomic():
                    current_user.large_text = TEXT_SIZES[size]
                flash(_("已保存。"), "success")
                return _remember_text_size(redirect(url_for("web_main.profile")), TEXT_SIZES[size])
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
