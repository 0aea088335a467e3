"""Session pages: schedule one (from the project page), a session (sign up / cancel; the
owner's check-in code and QR, attendance, marking present, the delivery), the member's
check-in form, and the private calendar feed (``docs/sessions.md``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..http.links import check_in_link
from ..models import Area, Role, SessionStatus, utcnow
from ..schemas.sessions import AttendanceIn, SessionDeliveryIn, SessionIn
from ..services import permissions
from ..services import sessions as session_service
from ..services import users as user_service
from ..services.errors import DomainError
from ..zones import area_zone
from .forms import domain_errors, form_errors, joined, local_input, local_to_iso

bp = Blueprint("web_sessions", __name__)


def _back(session_id: int) -> ResponseReturnValue:
    return redirect(url_for("web_sessions.session_page", session_id=session_id), 303)


def _refused(errors: dict[str, list[str]]) -> None:
    flash(joined(errors), "error")


@bp.route("/projects/<int:project_id>/sessions", methods=["POST"])
@login_required
def new_session(project_id: int) -> ResponseReturnValue:
    """Schedule a session (the owner; the form is on the project page)."""
    from ..services import projects as project_service

    p = project_service.get_visible_project(current_user, project_id)
    permissions.require(current_user, "session.create", p)
    community = db.session.get(Area, p.community_id)
    assert community is not None
    tz = area_zone(community)
    f = request.form
    data = {
        "starts_at": local_to_iso(f.get("starts_at", "").strip(), tz),
        "ends_at": local_to_iso(f.get("ends_at", "").strip(), tz),
        "place": f.get("place", ""),
        "slots": f.get("slots", "").strip(),
    }
    try:
        loaded = SessionIn().load({k: v for k, v in data.items() if v not in (None, "")})
        with atomic():
            session = session_service.create_session(current_user, p.id, **loaded)
            session_id = session.id
    except ValidationError as exc:
        _refused(form_errors(exc))
    except DomainError as exc:
        _refused(domain_errors(exc))
    else:
        flash(_("已发布活动场次。"), "success")
        return _back(session_id)
    return redirect(url_for("web_projects.project", project_id=p.id, _anchor="sessions"), 303)


@bp.route("/sessions/<int:session_id>")
@login_required
def session_page(session_id: int) -> ResponseReturnValue:
    """A session: counts, my status, and for the owner the code, QR and attendance."""
    me = current_user
    session = session_service.get_visible_session(me, session_id)
    view = session_service.present(me, [session])[0]
    p = session_service.project_of(session)
    community = db.session.get(Area, p.community_id)
    assert community is not None
    tz = area_zone(community)
    is_owner = permissions.may(me, "session.manage", session)
    moment = utcnow()
    margin = session_service.CHECK_IN_MARGIN
    context: dict[str, Any] = {
        "s": session,
        "v": view,
        "p": p,
        "tz": tz,
        "is_owner": is_owner,
        "can_sign_up": permissions.may(me, "session.signup", session) and view.my_status is None,
        "scheduled": session.status == SessionStatus.SCHEDULED,
        # what the page offers follows the service's time rules (docs/sessions.md): no
        # sign-up after the end, no cancelling after the start, the code only around it
        "ended": session.ends_at <= moment,
        "started": session.starts_at <= moment,
        "code_open": session.starts_at - margin <= moment <= session.ends_at + margin,
    }
    if is_owner:
        code = session_service.current_code(me, session)
        present = {a.user_id: a for a in session_service.attendance_of(session.id)}
        context.update(
            code=code,
            link=check_in_link(session.id, code.code),
            signups=session_service.signups_of(session.id),
            present=present,
            residents=user_service.holders_of(Role.RESIDENT, community),
        )
    response = Response(render_template("sessions/session.html", **context))
    if is_owner:
        response.headers["Cache-Control"] = "no-store"
    return response


def _act(verb: str, session_id: int) -> str:
    """Run one action of the session page; return the success message."""
    me, f = current_user, request.form
    if verb == "signup":
        row = session_service.signup(me, session_id)
        return _("报名成功。") if row.status.value == "signed_up" else _("名额已满，已加入候补。")
    if verb == "withdraw":
        session_service.cancel_signup(me, session_id)
        return _("已取消报名。")
    if verb == "cancel":
        session_service.cancel_session(me, session_id)
        return _("活动场次已取消。")
    if verb in ("mark", "mark_out"):
        data = AttendanceIn().load({"user_id": f.get("user_id", "").strip() or None})
        if verb == "mark":
            session_service.check_in(me, session_id, user_id=data["user_id"])
            return _("已登记到场。")
        session_service.check_out(me, session_id, user_id=data["user_id"])
        return _("已登记签退。")
    if verb == "deliver":
        payload: dict[str, Any] = {"beneficiaries": [v for v in f.getlist("beneficiaries") if v]}
        if f.get("need_id"):
            payload["need_id"] = f.get("need_id")
        loaded = SessionDeliveryIn().load(payload)
        session_service.deliver(me, session_id, **loaded)
        return _("已根据签到生成服务记录。")
    abort(404)


@bp.route("/sessions/<int:session_id>/<string:verb>", methods=["POST"])
@login_required
def session_action(session_id: int, verb: str) -> ResponseReturnValue:
    """Sign up, withdraw, cancel the session, mark present/out, create the delivery."""
    session_service.get_visible_session(current_user, session_id)
    if verb not in ("signup", "withdraw", "cancel", "mark", "mark_out", "deliver"):
        abort(404)
    try:
        with atomic():
            message = _act(verb, session_id)
            delivery_id = session_service.get_session(session_id).delivery_id
    except ValidationError as exc:
        _refused(form_errors(exc))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        _refused(domain_errors(exc))
    else:
        flash(message, "success")
        if verb == "deliver" and delivery_id is not None:
            return redirect(url_for("web_deliveries.delivery", delivery_id=delivery_id), 303)
    return _back(session_id)


@bp.route("/sessions/<int:session_id>/check-in", methods=["GET", "POST"])
@login_required
def check_in_page(session_id: int) -> ResponseReturnValue:
    """The member's check-in form: type the code shown at the venue (or scan its QR)."""
    me = current_user
    session = session_service.get_visible_session(me, session_id)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        permissions.require(me, "session.attend", session)
        action = request.form.get("action", "in")
        try:
            data = AttendanceIn().load({"code": request.form.get("code", "").strip() or None})
            if data["code"] is None:
                raise ValidationError({"code": ["Missing data for required field."]})
            with atomic():
                if action == "out":
                    session_service.check_out(me, session_id, code=data["code"])
                else:
                    session_service.check_in(me, session_id, code=data["code"])
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except DomainError as exc:
            if exc.status in (403, 404):
                raise
            errors, status = domain_errors(exc), exc.status
        else:
            flash(_("已签退。") if action == "out" else _("签到成功。"), "success")
            return _back(session_id)
    p = session_service.project_of(session)
    return render_template(
        "sessions/check_in.html",
        s=session,
        p=p,
        code=request.form.get("code", request.args.get("code", ""))[:6],
        errors=errors,
    ), status


@bp.route("/calendar/<string:feed>.ics")
def calendar_feed(feed: str) -> ResponseReturnValue:
    """A person's private calendar feed (no sign-in: the link is the secret)."""
    user = session_service.user_of_token(feed)
    if user is None:
        abort(404)
    content = session_service.to_ics(
        session_service.sessions_of(user), name=user.display_name, host=request.host
    )
    response = Response(content, mimetype="text/calendar")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def session_form_defaults(tz: Any) -> dict[str, str]:
    """Default start and end of the project page's session form (tomorrow 9-11)."""
    from datetime import datetime, timedelta

    start = (datetime.now(tz) + timedelta(days=1)).replace(hour=9, minute=0, second=0)
    return {
        "starts_at": local_input(start, tz),
        "ends_at": local_input(start + timedelta(hours=2), tz),
    }
