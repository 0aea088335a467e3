"""Project pages: the project list, my projects, the secretary's review queue, propose
and edit, a project's page with its actions, its team, and ordering a menu service.

Same services and ``*In`` schemas as the API. Refusals raised by services reach the
app-level error handler (403/404/409 pages); form input errors re-render the form
with field messages in the page's language and status 422.
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
from ..http.uploads import send_upload, upload_transaction
from ..models import (
    Area,
    AreaKind,
    Category,
    ProjectAction,
    ProjectMode,
    ProjectStatus,
    Role,
    TeamStatus,
)
from ..schemas.common import MAX_ID
from ..schemas.projects import ProjectIn, ProjectPatchIn
from ..services import deliveries as delivery_service
from ..services import needs as need_service
from ..services import permissions
from ..services import projects as project_service
from ..services import sessions as session_service
from ..services import users as user_service
from ..services.errors import ValidationFailed
from ..zones import area_zone
from .forms import (
    digits,
    domain_errors,
    enum_arg,
    form_errors,
    int_arg,
    local_input,
    local_to_iso,
    tags,
)
from .labels import TARGET_GROUP_LABELS, action_label
from .paging import page_arg, paginate
from .sessions import session_form_defaults

bp = Blueprint("web_projects", __name__)

PER_PAGE = 20

#: Target groups offered as check boxes on the project form (stored as typed).
TARGET_GROUP_SUGGESTIONS = list(TARGET_GROUP_LABELS)

# --- the project list, mine, the review queue -------------------------------------------


#: The form's list fields, one text input each: an error of one item is shown under it.
_LIST_FIELDS = ("skills", "target_groups")


def _project_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Return the form's errors, an item's error of a list field (``skills.0``) also under
    the field itself, where the page shows it."""
    errors = form_errors(exc)
    for key, messages in list(errors.items()):
        field = key.split(".", 1)[0]
        if field in _LIST_FIELDS and key != field:
            errors.setdefault(field, [])
            errors[field].extend(m for m in messages if m not in errors[field])
    return errors


@bp.route("/projects")
@login_required
def projects() -> ResponseReturnValue:
    """The project list with filters (community, category, mode, status, text)."""
    filters: dict[str, Any] = {
        "community_id": int_arg("community_id"),
        "category": enum_arg(Category, "category"),
        "mode": enum_arg(ProjectMode, "mode"),
        "status": enum_arg(ProjectStatus, "status"),
        "q": request.args.get("q", "").strip()[:100] or None,
    }
    page = paginate(project_service.list_projects(current_user, **filters), page_arg(), PER_PAGE)
    communities = list(
        db.session.scalars(
            sa.select(Area).where(Area.kind == AreaKind.COMMUNITY).order_by(Area.path)
        )
    )
    return render_template(
        "projects/projects.html",
        projects=page["items"],
        total=page["total"],
        page=page["page"],
        per_page=PER_PAGE,
        filters=filters,
        communities=communities,
        categories=list(Category),
        modes=list(ProjectMode),
        statuses=list(ProjectStatus),
        can_propose=permissions.may(current_user, "project.propose"),
        args={k: v for k, v in request.args.items() if k != "page"},
    )


@bp.route("/projects/mine")
@login_required
def my_projects() -> ResponseReturnValue:
    """Projects I lead or am on the team of (including pending requests)."""
    stmt = project_service.list_projects(current_user, member_id=current_user.id)
    page = paginate(stmt, page_arg(), PER_PAGE)
    return render_template(
        "projects/my_projects.html",
        projects=page["items"],
        total=page["total"],
        page=page["page"],
        per_page=PER_PAGE,
        can_propose=permissions.may(current_user, "project.propose"),
    )


@bp.route("/review")
@login_required
def review_queue() -> ResponseReturnValue:
    """The secretary's queue of submitted projects: one tap to approve, a reason to refuse."""
    permissions.require(current_user, "project.review_queue")
    queue = project_service.review_queue(current_user)
    hints = {
        p.id: project_service.similar_projects(
            current_user, p.community, p.title, exclude_id=p.id, limit=3
        )
        for p in queue
    }
    return render_template("projects/review.html", queue=queue, hints=hints)


# --- propose and edit ---------------------------------------------------------------


def _community(community_id: int | None) -> Area | None:
    """Return the area of a submitted ``community_id`` (None if there is none)."""
    if not community_id or community_id > MAX_ID:
        return None
    return db.session.get(Area, community_id)


def _project_form(form: Any, *, community_id: int | None) -> dict[str, Any]:
    """Return the ``ProjectIn``/``ProjectPatchIn`` payload of the project form."""
    tz = area_zone(_community(community_id))
    data: dict[str, Any] = {}
    for name in ("title", "description", "category", "mode", "capacity", "planned_hours"):
        value = form.get(name)
        if value is not None and value.strip() != "":
            data[name] = value
    for name in ("starts_at", "ends_at"):
        data[name] = local_to_iso(form.get(name, "").strip(), tz)
    data["skills"] = tags(form.get("skills"))
    data["target_groups"] = list(
        dict.fromkeys(form.getlist("target_groups") + tags(form.get("target_groups_other")))
    )
    return data


@bp.route("/projects/new", methods=["GET", "POST"])
@login_required
def new_project() -> ResponseReturnValue:
    """Propose a project (a draft); "检查相似" shows similar titles before saving."""
    communities = user_service.communities_where(current_user, [Role.MEMBER])
    if not communities:
        abort(403)
    errors: dict[str, list[str]] = {}
    similar: list[Any] = []
    status = 200
    form = request.form
    if request.method == "POST":
        community_id = digits(form.get("community_id", ""))
        data = _project_form(form, community_id=community_id)
        if community_id is not None:
            data["community_id"] = community_id
        community = _community(community_id)
        if (
            community is not None
            and form.get("title", "").strip()
            and permissions.may(current_user, "project.similar", community)
        ):
            similar = project_service.similar_projects(current_user, community, form["title"])
        if form.get("action") != "check":
            try:
                loaded = ProjectIn().load(data)
                with upload_transaction() as files, atomic():
                    project = project_service.create_project(current_user, **loaded)
                    stored = files.save(request.files.get("cover"), "cover")
                    if stored:
                        project_service.set_cover(current_user, project, stored)
            except ValidationError as exc:
                errors, status = _project_errors(exc), 422
            except ValidationFailed as exc:
                errors, status = domain_errors(exc), 422
            else:
                flash(_("已保存草稿，确认无误后请提交审核。"), "success")
                return redirect(url_for("web_projects.project", project_id=project.id))
    return render_template(
        "projects/project_form.html",
        project=None,
        form=form,
        errors=errors,
        similar=similar,
        communities=communities,
        categories=list(Category),
        modes=list(ProjectMode),
        suggestions=TARGET_GROUP_SUGGESTIONS,
        chosen_groups=form.getlist("target_groups"),
    ), status


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
@login_required
def edit_project(project_id: int) -> ResponseReturnValue:
    """Edit a draft or a project sent back for changes (owner)."""
    project = project_service.get_visible_project(current_user, project_id)
    project_service.check_editable(current_user, project)
    errors: dict[str, list[str]] = {}
    status = 200
    tz = area_zone(project.community)
    form: Any
    if request.method == "POST":
        data = _project_form(request.form, community_id=project.community_id)
        try:
            loaded = ProjectPatchIn().load(data)
            with upload_transaction() as files, atomic():
                project = project_service.get_visible_project(current_user, project_id)
                project_service.update_project(current_user, project, loaded)
                stored = files.save(request.files.get("cover"), "cover")
                if stored:
                    files.replace(project.cover_path)
                    project_service.set_cover(current_user, project, stored)
        except ValidationError as exc:
            errors, status = _project_errors(exc), 422
        except ValidationFailed as exc:
            errors, status = domain_errors(exc), 422
        else:
            flash(_("已保存。"), "success")
            return redirect(url_for("web_projects.project", project_id=project.id))
        form = request.form
        chosen = request.form.getlist("target_groups")
    else:
        form = {
            "title": project.title,
            "description": project.description,
            "category": project.category.value,
            "mode": project.mode.value,
            "capacity": str(project.capacity),
            "planned_hours": f"{project.planned_hours:g}",
            "starts_at": local_input(project.starts_at, tz),
            "ends_at": local_input(project.ends_at, tz),
            "skills": "，".join(project.skills or []),
            "target_groups_other": "，".join(
                g for g in project.target_groups or [] if g not in TARGET_GROUP_SUGGESTIONS
            ),
        }
        chosen = list(project.target_groups or [])
    similar = project_service.similar_projects(
        current_user, project.community, project.title, exclude_id=project.id
    )
    return render_template(
        "projects/project_form.html",
        project=project,
        form=form,
        errors=errors,
        similar=similar,
        communities=[project.community],
        categories=list(Category),
        modes=list(ProjectMode),
        suggestions=TARGET_GROUP_SUGGESTIONS,
        chosen_groups=chosen,
    ), status


# --- a project and its actions --------------------------------------------------------


@bp.route("/projects/<int:project_id>")
@login_required
def project(project_id: int) -> ResponseReturnValue:
    """A project with its team, lifecycle history, needs and deliveries, and the actions
    the viewer may take."""
    p = project_service.get_visible_project(current_user, project_id)
    me = current_user
    is_owner = permissions.may(me, "project.own", p)
    is_reviewer = permissions.may(me, "project.review", p)
    staff = is_reviewer or permissions.reads_community(me, p.community_id)
    my_status = permissions.team_status(p.id, me.id)
    team = project_service.team_of(p, None if (is_owner or is_reviewer) else [TeamStatus.ACTIVE])
    actions = [
        action
        for action in (ProjectAction.SUBMIT, ProjectAction.WITHDRAW, ProjectAction.COMPLETE)
        if (p.status, action) in project_service.TRANSITIONS
        and any(
            permissions.may(me, project_service.BY_RULE[b], p)
            for b in project_service.TRANSITIONS[(p.status, action)].by
        )
    ]
    cancel_cell = project_service.TRANSITIONS.get((p.status, ProjectAction.CANCEL))
    can_cancel = cancel_cell is not None and any(
        permissions.may(me, project_service.BY_RULE[b], p) for b in cancel_cell.by
    )
    can_edit = is_owner and (p.status, ProjectAction.EDIT) in project_service.TRANSITIONS
    on_team = permissions.on_team(me, p)
    can_join = (
        not is_owner
        and me.id != p.owner_id
        and permissions.may(me, "team.join", p)
        and p.status in project_service.TEAM_OPEN_STATUSES
        and my_status not in (TeamStatus.PENDING, TeamStatus.ACTIVE)
        and p.team_size < p.capacity
    )
    deliveries = list(
        db.session.execute(delivery_service.list_deliveries(me, project_id=p.id).limit(50))
        .unique()
        .scalars()
    )
    needs = []
    if on_team or staff:
        needs = list(
            db.session.execute(need_service.list_needs(me, project_id=p.id).limit(50))
            .unique()
            .scalars()
        )
    history = project_service.transitions_of(p) if permissions.may(me, "project.history", p) else []
    similar = []
    if (is_owner and can_edit) or (is_reviewer and p.status == ProjectStatus.SUBMITTED):
        similar = project_service.similar_projects(me, p.community, p.title, exclude_id=p.id)
    return render_template(
        "projects/project.html",
        p=p,
        is_owner=is_owner,
        is_reviewer=is_reviewer,
        my_status=my_status,
        team=team,
        actions=actions,
        can_cancel=can_cancel,
        can_edit=can_edit,
        can_join=can_join,
        can_leave=my_status in (TeamStatus.PENDING, TeamStatus.ACTIVE),
        can_order=(
            p.mode == ProjectMode.MENU
            and p.status == ProjectStatus.APPROVED
            and permissions.may(me, "project.order", p)
        ),
        can_record=on_team and p.status == ProjectStatus.APPROVED,
        deliveries=deliveries,
        needs=needs,
        history=history,
        similar=similar,
        sessions=session_service.list_sessions(me, p.id, upcoming_only=not is_owner),
        can_schedule=is_owner and p.status == ProjectStatus.APPROVED,
        session_defaults=session_form_defaults(area_zone(db.session.get(Area, p.community_id))),
    )


@bp.route("/projects/<int:project_id>/cover")
@login_required
def project_cover(project_id: int) -> ResponseReturnValue:
    """The cover image of a project I may see."""
    p = project_service.get_visible_project(current_user, project_id)
    return send_upload(p.cover_path)


_FORM_ACTIONS = {
    "submit": ProjectAction.SUBMIT,
    "withdraw": ProjectAction.WITHDRAW,
    "complete": ProjectAction.COMPLETE,
    "cancel": ProjectAction.CANCEL,
}


@bp.route("/projects/<int:project_id>/action", methods=["POST"])
@login_required
def project_action(project_id: int) -> ResponseReturnValue:
    """Submit, withdraw, complete or cancel (with an optional comment)."""
    action = _FORM_ACTIONS.get(request.form.get("action", ""))
    if action is None:
        abort(400)
    comment = request.form.get("comment", "")[:1000]
    with atomic():
        p = project_service.get_visible_project(current_user, project_id)
        project_service.transition(current_user, p, action, comment)
    flash(_("操作成功：%(action)s", action=action_label(action)), "success")
    return redirect(url_for("web_projects.project", project_id=project_id))


@bp.route("/projects/<int:project_id>/review", methods=["POST"])
@login_required
def project_review(project_id: int) -> ResponseReturnValue:
    """Approve, reject or request changes (the community's secretary)."""
    decision = request.form.get("decision", "")
    comment = request.form.get("comment", "").strip()
    back = request.form.get("next") == "queue"
    try:
        with atomic():
            p = project_service.get_visible_project(current_user, project_id)
            project_service.review(current_user, p, decision, comment)
    except ValidationFailed as exc:
        if exc.errors and "comment" in exc.errors:
            flash(_("驳回或退回修改时必须填写理由。"), "error")
        else:
            flash(_("请选择审核结果。"), "error")
        target = (
            url_for("web_projects.review_queue")
            if back
            else url_for("web_projects.project", project_id=project_id)
        )
        return render_template("redirect.html", target=target), 422
    flash(_("审核完成。"), "success")
    if back:
        return redirect(url_for("web_projects.review_queue"))
    return redirect(url_for("web_projects.project", project_id=project_id))


# --- the team, menu orders ------------------------------------------------------------


@bp.route("/projects/<int:project_id>/team/<string:verb>", methods=["POST"])
@login_required
def team_action(project_id: int, verb: str) -> ResponseReturnValue:
    """Join or leave the team."""
    with atomic():
        p = project_service.get_visible_project(current_user, project_id)
        if verb == "join":
            project_service.request_join(current_user, p)
            flash(_("已申请加入，等待项目负责人审批。"), "success")
        elif verb == "leave":
            project_service.leave_team(current_user, p)
            flash(_("已退出团队。"), "success")
        else:
            abort(404)
    return redirect(url_for("web_projects.project", project_id=project_id))


@bp.route("/projects/<int:project_id>/team/<int:user_id>/<string:verb>", methods=["POST"])
@login_required
def team_answer(project_id: int, user_id: int, verb: str) -> ResponseReturnValue:
    """Approve or decline a join request (owner)."""
    with atomic():
        p = project_service.get_visible_project(current_user, project_id)
        if verb == "approve":
            project_service.approve_member(current_user, p, user_id)
        elif verb == "decline":
            project_service.decline_member(current_user, p, user_id)
        else:
            abort(404)
    flash(_("已处理入队申请。"), "success")
    return redirect(url_for("web_projects.project", project_id=project_id))


@bp.route("/projects/<int:project_id>/order", methods=["POST"])
@login_required
def order(project_id: int) -> ResponseReturnValue:
    """Order a menu service (resident)."""
    description = request.form.get("description", "").strip()[:5000]
    with atomic():
        p = project_service.get_visible_project(current_user, project_id)
        need = need_service.order_menu(current_user, p, description=description)
    flash(_("已下单，项目负责人会与您联系。"), "success")
    return redirect(url_for("web_needs.needs", mine=1, _anchor=f"need-{need.id}"))
