"""Needs pages: the needs board (claim, release, cancel, dispatch) and posting a need.

Same services and ``*In`` schemas as the API; refusals raised by services reach the
app-level error handler, form input errors re-render the form (422).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..models import Area, Category, NeedStatus, Project, ProjectStatus, Role
from ..schemas.common import MAX_ID
from ..schemas.needs import NeedIn
from ..services import needs as need_service
from ..services import permissions
from ..services import users as user_service
from ..services.errors import ValidationFailed
from .forms import digits, domain_errors, enum_arg, form_errors, int_arg, joined
from .paging import page_arg, paginate

bp = Blueprint("web_needs", __name__)

PER_PAGE = 20


@bp.route("/needs")
@login_required
def needs() -> ResponseReturnValue:
    """The needs board: claim (members), dispatch (secretary), release, cancel."""
    me = current_user
    filters: dict[str, Any] = {
        "community_id": int_arg("community_id"),
        "status": enum_arg(NeedStatus, "status"),
        "category": enum_arg(Category, "category"),
        "mine": request.args.get("mine") in ("1", "true"),
    }
    page = paginate(need_service.list_needs(me, **filters), page_arg(), PER_PAGE)
    rows = page["items"]
    secretary_of = permissions.communities_of(me, [Role.SECRETARY])
    dispatch_targets: dict[int, dict[str, list[Any]]] = {}
    for community_id in {n.community_id for n in rows if n.community_id in secretary_of}:
        community = db.session.get(Area, community_id)
        assert community is not None
        dispatch_targets[community_id] = {
            "projects": list(
                db.session.scalars(
                    sa.select(Project)
                    .where(
                        Project.community_id == community_id,
                        Project.status == ProjectStatus.APPROVED,
                    )
                    .order_by(Project.title)
                )
            ),
            "members": user_service.holders_of(Role.MEMBER, community),
        }
    return render_template(
        "needs/needs.html",
        needs=rows,
        total=page["total"],
        page=page["page"],
        per_page=PER_PAGE,
        filters=filters,
        statuses=list(NeedStatus),
        categories=list(Category),
        dispatch_targets=dispatch_targets,
        member_of=permissions.communities_of(me, [Role.MEMBER]),
        secretary_of=secretary_of,
        can_post=bool(permissions.communities_of(me, [Role.RESIDENT, Role.GRID_WORKER])),
        args={k: v for k, v in request.args.items() if k != "page"},
    )


@bp.route("/needs/new", methods=["GET", "POST"])
@login_required
def new_need() -> ResponseReturnValue:
    """Post a need: residents for themselves, grid workers for a resident."""
    resident_of = user_service.communities_where(current_user, [Role.RESIDENT])
    worker_of = user_service.communities_where(current_user, [Role.GRID_WORKER])
    if not resident_of and not worker_of:
        abort(403)
    residents = {c.id: user_service.holders_of(Role.RESIDENT, c) for c in worker_of}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        f = request.form
        data: dict[str, Any] = {
            k: f.get(k) for k in ("community_id", "title", "description", "category") if f.get(k)
        }
        if f.get("on_behalf_of"):
            data["on_behalf_of"] = f.get("on_behalf_of")
        try:
            loaded = NeedIn().load(data)
            with atomic():
                need = need_service.create_need(current_user, **loaded)
        except ValidationError as exc:
            errors, status = form_errors(exc), 422
        except ValidationFailed as exc:
            errors, status = domain_errors(exc), 422
        else:
            flash(_("需求已发布。"), "success")
            return redirect(url_for("web_needs.needs", mine=1, _anchor=f"need-{need.id}"))
    return render_template(
        "needs/need_form.html",
        form=request.form,
        errors=errors,
        communities=list({c.id: c for c in resident_of + worker_of}.values()),
        worker_of=worker_of,
        residents=residents,
        categories=list(Category),
    ), status


@bp.route("/needs/<int:need_id>/<string:verb>", methods=["POST"])
@login_required
def need_action(need_id: int, verb: str) -> ResponseReturnValue:
    """Claim, release, cancel or dispatch a need."""
    if verb not in ("claim", "release", "cancel", "dispatch"):
        abort(404)
    board_args: dict[str, Any] = dict(request.args.items())
    back = url_for("web_needs.needs", **board_args)
    target_id: int | None = None
    kind = ""
    if verb == "dispatch":
        kind, _sep, raw_id = request.form.get("target", "").partition(":")
        target_id = digits(raw_id)
        if kind not in ("project", "member") or target_id is None or target_id > MAX_ID:
            flash(_("请选择派单对象。"), "error")
            return render_template("redirect.html", target=back), 422
    with atomic():
        need = need_service.get_visible_need(current_user, need_id)
        if verb == "claim":
            need_service.claim(current_user, need)
            flash(_("抢单成功！"), "success")
        elif verb == "release":
            need_service.release(current_user, need)
            flash(_("已放回需求池。"), "success")
        elif verb == "cancel":
            need_service.cancel(current_user, need)
            flash(_("需求已取消。"), "success")
        else:
            key = "project_id" if kind == "project" else "member_id"
            try:
                need_service.dispatch(current_user, need, **{key: target_id})
            except ValidationFailed as exc:
                flash(joined(domain_errors(exc)), "error")
                return render_template("redirect.html", target=back), 422
            flash(_("已派单。"), "success")
    return redirect(back + f"#need-{need_id}")
