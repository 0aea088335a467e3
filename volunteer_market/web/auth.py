"""Login and logout pages."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..database import atomic
from ..http.throttles import login_throttle, mark_login_failed
from ..services import auth as auth_service
from ..services.errors import AuthenticationFailed

bp = Blueprint("web_auth", __name__)


def _safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else the home page (no open redirect).

    Control characters (CR/LF would break the Location header; browsers drop tabs) and
    backslashes (browsers read ``/\\host`` as ``//host``) are refused outright.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not any(ord(c) < 32 or ord(c) == 127 or c == "\\" for c in target)
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("web_main.home")


@bp.route("/login", methods=["GET", "POST"])
@login_throttle
def login() -> ResponseReturnValue:
    """Show the login form; sign in on POST."""
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("web_main.home"))
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "")[:64]
    password = request.form.get("password", "")[:256]
    try:
        user = auth_service.authenticate(username, password)
    except AuthenticationFailed:
        mark_login_failed()
        return render_template(
            "login.html",
            error=_("用户名或密码错误。"),
            username=username,
            next=request.form.get("next", ""),
        ), 401
    session.clear()
    login_user(user)
    now = datetime.now(UTC).timestamp()
    session["_login_at"] = now
    session["_last_seen"] = now
    session.permanent = True
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> ResponseReturnValue:
    """Sign out and end every copy of this session cookie."""
    with atomic():
        user = auth_service.load_session_user(current_user.get_id())
        if user is not None:
            auth_service.end_sessions(user)
    logout_user()
    session.clear()
    flash(_("您已退出登录。"), "info")
    return redirect(url_for("web_auth.login"))
