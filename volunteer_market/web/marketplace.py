"""Marketplace pages: projects, review queue, teams, needs board, deliveries, notifications.

Same services and ``*In`` schemas as the API. Refusals raised by services reach the
app-level error handler (403/404/409 pages); form input errors re-render the form
with field messages and status 422.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from marshmallow import ValidationError

from ..database import atomic
from ..extensions import db
from ..http.rating_codes import rating_codes
from ..http.uploads import save_upload, send_upload, upload_dir
from ..models import (
    Area,
    AreaKind,
    Category,
    DeliveryStatus,
    Need,
    NeedStatus,
    Project,
    ProjectAction,
    ProjectMode,
    ProjectStatus,
    Role,
    RoleGrant,
    TeamStatus,
    User,
)
from ..schemas.deliveries import DeliveryIn
from ..schemas.needs import NeedIn
from ..schemas.projects import ProjectIn, ProjectPatchIn
from ..services import deliveries as delivery_service
from ..services import needs as need_service
from ..services import notifications as notification_service
from ..services import permissions, uploads
from ..services import projects as project_service
from ..services.errors import Conflict, DomainError, ValidationFailed
from ..zones import DEFAULT_ZONE, area_zone

bp = Blueprint("web_market", __name__)

PER_PAGE = 20

# --- labels -----------------------------------------------------------------------

CATEGORY_LABELS = {
    Category.ELDERLY: _l("助老助残"),
    Category.HEALTH: _l("医疗健康"),
    Category.LEGAL: _l("法律服务"),
    Category.CULTURE: _l("文化文艺"),
    Category.ENVIRONMENT: _l("环境美化"),
    Category.EDUCATION: _l("教育辅导"),
    Category.ERRAND: _l("代办跑腿"),
    Category.REPAIR: _l("维修便民"),
    Category.OTHER: _l("其他"),
}
MODE_LABELS = {ProjectMode.EVENT: _l("活动"), ProjectMode.MENU: _l("服务菜单")}
PROJECT_STATUS_LABELS = {
    ProjectStatus.DRAFT: _l("草稿"),
    ProjectStatus.SUBMITTED: _l("待审核"),
    ProjectStatus.CHANGES_REQUESTED: _l("需修改"),
    ProjectStatus.APPROVED: _l("已通过"),
    ProjectStatus.REJECTED: _l("未通过"),
    ProjectStatus.COMPLETED: _l("已完成"),
    ProjectStatus.CANCELLED: _l("已取消"),
}
ACTION_LABELS = {
    ProjectAction.EDIT: _l("编辑"),
    ProjectAction.SUBMIT: _l("提交审核"),
    ProjectAction.WITHDRAW: _l("撤回"),
    ProjectAction.APPROVE: _l("通过"),
    ProjectAction.REJECT: _l("驳回"),
    ProjectAction.REQUEST_CHANGES: _l("退回修改"),
    ProjectAction.COMPLETE: _l("结项"),
    ProjectAction.CANCEL: _l("取消"),
}
NEED_STATUS_LABELS = {
    NeedStatus.OPEN: _l("待认领"),
    NeedStatus.DISPATCHED: _l("已派单"),
    NeedStatus.CLAIMED: _l("已认领"),
    NeedStatus.CLOSED: _l("已完成"),
    NeedStatus.CANCELLED: _l("已取消"),
}
TEAM_STATUS_LABELS = {
    TeamStatus.PENDING: _l("待审批"),
    TeamStatus.ACTIVE: _l("队员"),
    TeamStatus.DECLINED: _l("已婉拒"),
    TeamStatus.LEFT: _l("已退出"),
}
DELIVERY_STATUS_LABELS = {
    DeliveryStatus.AWAITING_RATINGS: _l("待评价"),
    DeliveryStatus.SETTLED: _l("已结算"),
    DeliveryStatus.CANCELLED: _l("已作废"),
}
TARGET_GROUP_SUGGESTIONS = [
    "空巢老人",
    "独居老人",
    "残疾人",
    "儿童",
    "青少年",
    "困难家庭",
    "全体居民",
]

#: Chinese texts for the validation messages users meet most (others are shown as is).
_MESSAGES = {
    "Missing data for required field.": _l("必填。"),
    "Field may not be null.": _l("必填。"),
    "Not a valid integer.": _l("请输入整数。"),
    "Not a valid number.": _l("请输入数字。"),
    "Not a valid aware datetime.": _l("请输入有效的日期时间。"),
    "Not a valid datetime.": _l("请输入有效的日期时间。"),
    "Unknown field.": _l("不支持的字段。"),
    "Must be after starts_at.": _l("结束时间必须晚于开始时间。"),
    "Must be after started_at.": _l("结束时间必须晚于开始时间。"),
    "Required.": _l("必填。"),
    "Required to reject or request changes.": _l("驳回或退回修改时必须填写理由。"),
    "At least one minute.": _l("至少一分钟。"),
    "At least one participant.": _l("至少选择一名参与者。"),
    "Must not be in the future.": _l("不能晚于当前时间。"),
    "A session lasts at most 24 hours.": _l("单次服务不超过 24 小时。"),
    "More than the session length.": _l("不能超过本次服务时长。"),
    "Not the owner or an active team member.": _l("不是项目负责人或在队队员。"),
    "Not a community.": _l("请选择社区。"),
    "Only PNG, JPEG or WebP images.": _l("仅支持 PNG、JPEG 或 WebP 图片。"),
    "The image must be at most 2 MB.": _l("图片不能超过 2 MB。"),
    "The file is empty.": _l("文件为空。"),
    "Not a resident of this community.": _l("不是本社区居民。"),
    "Not a member of this community.": _l("不是本社区党员。"),
    "Not an approved project of this community.": _l("不是本社区已通过的项目。"),
    # rankings exposure settings (services.rankings.set_exposure)
    "Use full, top_n or tiers.": _l("请从选项中选择。"),
    "From 1 to 1000.": _l("取值范围：1 ~ 1000。"),
    "0 < gold < silver < bronze <= 100.": _l("须满足 0 < 金牌 < 银牌 < 铜牌 ≤ 100。"),
}
_RANGE_RE = re.compile(
    r"^Must be (?:greater than or equal to|greater than) (\S+) and less than or equal to (\S+)\.$"
)
_LENGTH_RE = re.compile(r"^Length must be between (\d+) and (\d+)\.$")
_SHORTER_RE = re.compile(r"^Longer than maximum length (\d+)\.$")


def zh_message(message: str) -> str:
    """Return the display text of a validation message."""
    if message in _MESSAGES:
        return str(_MESSAGES[message])
    if m := _RANGE_RE.match(message):
        return _("取值范围：%(lo)s ~ %(hi)s。", lo=m.group(1), hi=m.group(2))
    if m := _LENGTH_RE.match(message):
        return _("长度为 %(lo)s ~ %(hi)s 个字。", lo=m.group(1), hi=m.group(2))
    if m := _SHORTER_RE.match(message):
        return _("不超过 %(n)s 个字。", n=m.group(1))
    if message.startswith("Must be one of"):
        return _("请从选项中选择。")
    return message


def display_errors(errors: dict[str, Any]) -> dict[str, list[str]]:
    """Flatten nested field errors (``participants.0.hours``) and translate the messages."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict | list):
                    walk(prefix, item)
                else:
                    out.setdefault(prefix, []).append(zh_message(str(item)))
        else:
            out.setdefault(prefix, []).append(zh_message(str(value)))

    walk("", errors)
    return out


def _label(table: dict[Any, Any], value: Any) -> str:
    label = table.get(value) if value is not None else None
    if label is None and value is not None:
        for key, text in table.items():
            if str(key) == str(value):
                return str(text)
    return str(label) if label is not None else str(value or "")


@bp.app_context_processor
def _market_globals() -> dict[str, Any]:
    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        return notification_service.unread_count(current_user)

    return {
        "category_label": lambda v: _label(CATEGORY_LABELS, v),
        "mode_label": lambda v: _label(MODE_LABELS, v),
        "project_status_label": lambda v: _label(PROJECT_STATUS_LABELS, v),
        "action_label": lambda v: _label(ACTION_LABELS, v),
        "need_status_label": lambda v: _label(NEED_STATUS_LABELS, v),
        "team_status_label": lambda v: _label(TEAM_STATUS_LABELS, v),
        "delivery_status_label": lambda v: _label(DELIVERY_STATUS_LABELS, v),
        "unread_notifications": unread_notifications,
        "hours_of": lambda minutes: f"{minutes / 60:g}",
    }


# --- small helpers ------------------------------------------------------------------


def _page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 100000))
    except ValueError:
        return 1


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _enum_arg(enum_cls: Any, name: str) -> Any:
    value = request.args.get(name, "").strip()
    try:
        return enum_cls(value) if value else None
    except ValueError:
        return None


def _page(stmt: sa.Select[Any], page: int) -> tuple[list[Any], int]:
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    ).scalar_one()
    rows = list(
        db.session.execute(stmt.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).unique().scalars()
    )
    return rows, total


def _tz(community_id: int | None) -> ZoneInfo:
    return area_zone(db.session.get(Area, community_id) if community_id else None)


def _local_to_iso(value: str | None, tz: ZoneInfo) -> str | None:
    """Turn a ``datetime-local`` value into ISO 8601 with the community's offset."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return value  # the schema reports it
    if naive.tzinfo is not None:
        return naive.isoformat()
    return naive.replace(tzinfo=tz).isoformat()


def local_input(value: datetime | None, tz: ZoneInfo | None = None) -> str:
    """Return a ``datetime-local`` input value for ``value``."""
    if value is None:
        return ""
    return value.astimezone(tz or DEFAULT_ZONE).strftime("%Y-%m-%dT%H:%M")


_SPLIT_RE = re.compile(r"[,，、;；\s]+")


def _tags(value: str | None) -> list[str]:
    return [t for t in _SPLIT_RE.split(value or "") if t]


def _communities(roles: list[Role]) -> list[Area]:
    ids = permissions.communities_of(current_user, roles)
    if not ids:
        return []
    return list(db.session.scalars(sa.select(Area).where(Area.id.in_(ids)).order_by(Area.id)))


def _users_with_role(community: Area, role: Role) -> list[User]:
    """Active users holding ``role`` in ``community`` (or one of its grids), by name."""
    return list(
        db.session.scalars(
            sa.select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .join(Area, Area.id == RoleGrant.area_id)
            .where(
                RoleGrant.role == role,
                RoleGrant.revoked_at.is_(None),
                User.is_active.is_(True),
                Area.path.startswith(community.path, autoescape=True),
            )
            .distinct()
            .order_by(User.display_name, User.id)
        )
    )


def _domain_errors(exc: DomainError) -> dict[str, list[str]]:
    if exc.errors:
        return display_errors(exc.errors)
    return {"_schema": [_(exc.detail)]}


# --- projects: marketplace, mine, review queue ---------------------------------------


@bp.route("/projects")
@login_required
def projects():  # type: ignore[no-untyped-def]
    """The project marketplace with filters (community, category, mode, status, text)."""
    filters = {
        "community_id": _int_arg("community_id"),
        "category": _enum_arg(Category, "category"),
        "mode": _enum_arg(ProjectMode, "mode"),
        "status": _enum_arg(ProjectStatus, "status"),
        "q": request.args.get("q", "").strip()[:100] or None,
    }
    page = _page_arg()
    rows, total = _page(project_service.list_projects(current_user, **filters), page)
    communities = list(
        db.session.scalars(
            sa.select(Area).where(Area.kind == AreaKind.COMMUNITY).order_by(Area.path)
        )
    )
    return render_template(
        "market/projects.html",
        projects=rows,
        total=total,
        page=page,
        per_page=PER_PAGE,
        filters=filters,
        communities=communities,
        categories=list(Category),
        modes=list(ProjectMode),
        statuses=list(ProjectStatus),
        can_propose=bool(permissions.communities_of(current_user, [Role.MEMBER])),
        args={k: v for k, v in request.args.items() if k != "page"},
    )


@bp.route("/projects/mine")
@login_required
def my_projects():  # type: ignore[no-untyped-def]
    """Projects I lead or am on the team of (including pending requests)."""
    page = _page_arg()
    stmt = project_service.list_projects(current_user, member_id=current_user.id)
    rows, total = _page(stmt, page)
    return render_template(
        "market/my_projects.html",
        projects=rows,
        total=total,
        page=page,
        per_page=PER_PAGE,
        can_propose=bool(permissions.communities_of(current_user, [Role.MEMBER])),
    )


@bp.route("/review")
@login_required
def review_queue():  # type: ignore[no-untyped-def]
    """The secretary's queue of submitted projects: one tap to approve, a reason to refuse."""
    if not permissions.communities_of(current_user, [Role.SECRETARY]):
        abort(403)
    queue = project_service.review_queue(current_user)
    hints = {
        p.id: project_service.similar_projects(
            current_user, p.community, p.title, exclude_id=p.id, limit=3
        )
        for p in queue
    }
    return render_template("market/review.html", queue=queue, hints=hints)


# --- propose and edit ------------------------------------------------------------


def _project_form(form: Any, *, community_id: int | None) -> dict[str, Any]:
    tz = _tz(community_id)
    data: dict[str, Any] = {}
    for name in ("title", "description", "category", "mode", "capacity", "planned_hours"):
        value = form.get(name)
        if value is not None and value.strip() != "":
            data[name] = value
    for name in ("starts_at", "ends_at"):
        data[name] = _local_to_iso(form.get(name, "").strip(), tz)
    data["skills"] = _tags(form.get("skills"))
    data["target_groups"] = list(
        dict.fromkeys(form.getlist("target_groups") + _tags(form.get("target_groups_other")))
    )
    return data


def _store_cover(field: str = "cover") -> str | None:
    return save_upload(request.files.get(field), field)


@bp.route("/projects/new", methods=["GET", "POST"])
@login_required
def new_project():  # type: ignore[no-untyped-def]
    """Propose a project (a draft); "检查相似" shows similar titles before saving."""
    communities = _communities([Role.MEMBER])
    if not communities:
        abort(403)
    errors: dict[str, list[str]] = {}
    similar: list[Any] = []
    status = 200
    form = request.form
    if request.method == "POST":
        raw_cid = form.get("community_id", "")
        community_id = int(raw_cid) if raw_cid.isdigit() else None
        data = _project_form(form, community_id=community_id)
        if community_id is not None:
            data["community_id"] = community_id
        community = db.session.get(Area, community_id) if community_id else None
        if (
            community is not None
            and form.get("title", "").strip()
            and permissions.may(current_user, "project.similar", community)
        ):
            similar = project_service.similar_projects(current_user, community, form["title"])
        if form.get("action") != "check":
            stored: str | None = None
            try:
                loaded = ProjectIn().load(data)
                with atomic():
                    project = project_service.create_project(current_user, **loaded)
                    stored = _store_cover()
                    if stored:
                        project_service.set_cover(current_user, project, stored)
            except ValidationError as exc:
                errors, status = display_errors(exc.messages_dict), 422
            except ValidationFailed as exc:
                uploads.remove(upload_dir(), stored)
                errors, status = _domain_errors(exc), 422
            except DomainError:
                uploads.remove(upload_dir(), stored)
                raise
            else:
                flash(_("已保存草稿，确认无误后请提交审核。"), "success")
                return redirect(url_for("web_market.project", project_id=project.id))
    return render_template(
        "market/project_form.html",
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
def edit_project(project_id: int):  # type: ignore[no-untyped-def]
    """Edit a draft or a project sent back for changes (owner)."""
    project = project_service.get_visible_project(current_user, project_id)
    project_service.check_editable(current_user, project)
    errors: dict[str, list[str]] = {}
    status = 200
    tz = _tz(project.community_id)
    if request.method == "POST":
        data = _project_form(request.form, community_id=project.community_id)
        stored: str | None = None
        try:
            loaded = ProjectPatchIn().load(data)
            with atomic():
                project = project_service.get_visible_project(current_user, project_id)
                project_service.update_project(current_user, project, loaded)
                stored = _store_cover()
                if stored:
                    project_service.set_cover(current_user, project, stored)
        except ValidationError as exc:
            errors, status = display_errors(exc.messages_dict), 422
        except ValidationFailed as exc:
            uploads.remove(upload_dir(), stored)
            errors, status = _domain_errors(exc), 422
        except DomainError:
            uploads.remove(upload_dir(), stored)
            raise
        else:
            flash(_("已保存。"), "success")
            return redirect(url_for("web_market.project", project_id=project.id))
        form: Any = request.form
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
        "market/project_form.html",
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


# --- project detail and actions --------------------------------------------------


@bp.route("/projects/<int:project_id>")
@login_required
def project(project_id: int):  # type: ignore[no-untyped-def]
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
        "market/project.html",
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
    )


@bp.route("/projects/<int:project_id>/cover")
@login_required
def project_cover(project_id: int):  # type: ignore[no-untyped-def]
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
def project_action(project_id: int):  # type: ignore[no-untyped-def]
    """Submit, withdraw, complete or cancel (with an optional comment)."""
    action = _FORM_ACTIONS.get(request.form.get("action", ""))
    if action is None:
        abort(400)
    comment = request.form.get("comment", "")[:1000]
    with atomic():
        p = project_service.get_visible_project(current_user, project_id)
        project_service.transition(current_user, p, action, comment)
    flash(_("操作成功：%(action)s", action=ACTION_LABELS[action]), "success")
    return redirect(url_for("web_market.project", project_id=project_id))


@bp.route("/projects/<int:project_id>/review", methods=["POST"])
@login_required
def project_review(project_id: int):  # type: ignore[no-untyped-def]
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
            url_for("web_market.review_queue")
            if back
            else url_for("web_market.project", project_id=project_id)
        )
        return render_template("market/redirect.html", target=target), 422
    flash(_("审核完成。"), "success")
    if back:
        return redirect(url_for("web_market.review_queue"))
    return redirect(url_for("web_market.project", project_id=project_id))


@bp.route("/projects/<int:project_id>/team/<string:verb>", methods=["POST"])
@login_required
def team_action(project_id: int, verb: str):  # type: ignore[no-untyped-def]
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
    return redirect(url_for("web_market.project", project_id=project_id))


@bp.route("/projects/<int:project_id>/team/<int:user_id>/<string:verb>", methods=["POST"])
@login_required
def team_answer(project_id: int, user_id: int, verb: str):  # type: ignore[no-untyped-def]
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
    return redirect(url_for("web_market.project", project_id=project_id))


@bp.route("/projects/<int:project_id>/order", methods=["POST"])
@login_required
def order(project_id: int):  # type: ignore[no-untyped-def]
    """Order a menu service (resident)."""
    description = request.form.get("description", "").strip()[:5000]
    with atomic():
        p = project_service.get_visible_project(current_user, project_id)
        need = need_service.order_menu(current_user, p, description=description)
    flash(_("已下单，项目负责人会与您联系。"), "success")
    return redirect(url_for("web_market.needs", mine=1, _anchor=f"need-{need.id}"))


# --- needs --------------------------------------------------------------------------


@bp.route("/needs")
@login_required
def needs():  # type: ignore[no-untyped-def]
    """The needs board: claim (members), dispatch (secretary), release, cancel."""
    me = current_user
    filters = {
        "community_id": _int_arg("community_id"),
        "status": _enum_arg(NeedStatus, "status"),
        "category": _enum_arg(Category, "category"),
        "mine": request.args.get("mine") in ("1", "true"),
    }
    page = _page_arg()
    rows, total = _page(need_service.list_needs(me, **filters), page)
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
            "members": _users_with_role(community, Role.MEMBER),
        }
    return render_template(
        "market/needs.html",
        needs=rows,
        total=total,
        page=page,
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
def new_need():  # type: ignore[no-untyped-def]
    """Post a need: residents for themselves, grid workers for a resident."""
    resident_of = _communities([Role.RESIDENT])
    worker_of = _communities([Role.GRID_WORKER])
    if not resident_of and not worker_of:
        abort(403)
    residents = {c.id: _users_with_role(c, Role.RESIDENT) for c in worker_of}
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
            errors, status = display_errors(exc.messages_dict), 422
        except ValidationFailed as exc:
            errors, status = _domain_errors(exc), 422
        else:
            flash(_("需求已发布。"), "success")
            return redirect(url_for("web_market.needs", mine=1, _anchor=f"need-{need.id}"))
    return render_template(
        "market/need_form.html",
        form=request.form,
        errors=errors,
        communities=list({c.id: c for c in resident_of + worker_of}.values()),
        worker_of=worker_of,
        residents=residents,
        categories=list(Category),
    ), status


@bp.route("/needs/<int:need_id>/<string:verb>", methods=["POST"])
@login_required
def need_action(need_id: int, verb: str):  # type: ignore[no-untyped-def]
    """Claim, release, cancel or dispatch a need."""
    if verb not in ("claim", "release", "cancel", "dispatch"):
        abort(404)
    back = url_for("web_market.needs", **dict(request.args.items()))
    if verb == "dispatch":
        target = request.form.get("target", "")
        kind, _sep, raw_id = target.partition(":")
        if kind not in ("project", "member") or not raw_id.isdigit():
            flash(_("请选择派单对象。"), "error")
            return render_template("market/redirect.html", target=back), 422
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
                need_service.dispatch(current_user, need, **{key: int(raw_id)})
            except ValidationFailed as exc:
                flash("；".join(m for ms in _domain_errors(exc).values() for m in ms), "error")
                return render_template("market/redirect.html", target=back), 422
            flash(_("已派单。"), "success")
    return redirect(back + f"#need-{need_id}")


# --- deliveries ------------------------------------------------------------------


def _delivery_form(p: Project, team_ids: list[int]) -> tuple[dict[str, Any], dict[int, int]]:
    """Return the DeliveryIn payload from the form and ``{participant index: user id}``."""
    f = request.form
    tz = _tz(p.community_id)
    participants = []
    index_of: dict[int, int] = {}
    for uid in team_ids:
        if f.get(f"participant_{uid}"):
            index_of[len(participants)] = uid
            participants.append(
                {"user_id": uid, "hours": f.get(f"hours_{uid}", "").strip() or None}
            )
    data: dict[str, Any] = {
        "project_id": p.id,
        "started_at": _local_to_iso(f.get("started_at", "").strip(), tz),
        "ended_at": _local_to_iso(f.get("ended_at", "").strip(), tz),
        "participants": participants,
        "beneficiaries": [v for v in f.getlist("beneficiaries") if v],
        "no_shows": [v for v in f.getlist("no_shows") if v],
    }
    if f.get("need_id"):
        data["need_id"] = f.get("need_id")
    return {k: v for k, v in data.items() if v is not None}, index_of


def _per_person_errors(
    errors: dict[str, list[str]], index_of: dict[int, int]
) -> dict[str, list[str]]:
    """Rename ``participants.<i>.hours`` to ``hours_<user id>`` for the form."""
    out: dict[str, list[str]] = {}
    for key, msgs in errors.items():
        parts = key.split(".")
        if parts[0] == "participants" and len(parts) >= 2 and parts[1].isdigit():
            uid = index_of.get(int(parts[1]))
            key = f"hours_{uid}" if uid is not None else "participants"
        out.setdefault(key, []).extend(msgs)
    return out


@bp.route("/projects/<int:project_id>/deliveries/new", methods=["GET", "POST"])
@login_required
def new_delivery(project_id: int):  # type: ignore[no-untyped-def]
    """Record a service session; afterwards show each beneficiary's code and QR code once."""
    p = project_service.get_visible_project(current_user, project_id)
    permissions.require(current_user, "delivery.record", p)
    community = db.session.get(Area, p.community_id)
    assert community is not None
    members = [(p.owner_id, p.owner.display_name)] + [
        (m.user_id, m.user.display_name) for m in project_service.team_of(p, [TeamStatus.ACTIVE])
    ]
    residents = _users_with_role(community, Role.RESIDENT)
    open_needs = list(
        db.session.execute(
            need_service.list_needs(current_user, community_id=p.community_id).where(
                sa.or_(
                    Need.status == NeedStatus.OPEN,
                    Need.project_id == p.id,
                    Need.assignee_id.in_([uid for uid, _n in members]),
                ),
                Need.status.in_(need_service.LIVE_STATUSES),
            )
        )
        .unique()
        .scalars()
    )
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if p.status != ProjectStatus.APPROVED:
            raise Conflict(f"A project that is {p.status.value} takes no deliveries.")
        data, index_of = _delivery_form(p, [uid for uid, _n in members])
        stored: str | None = None
        try:
            loaded = DeliveryIn().load(data)
            with atomic():
                recorded = delivery_service.record_delivery(current_user, **loaded)
                stored = save_upload(request.files.get("photo"), "photo")
                if stored:
                    delivery_service.set_photo(current_user, recorded.delivery, stored)
        except ValidationError as exc:
            errors, status = _per_person_errors(display_errors(exc.messages_dict), index_of), 422
        except ValidationFailed as exc:
            uploads.remove(upload_dir(), stored)
            errors, status = _per_person_errors(_domain_errors(exc), index_of), 422
        except DomainError:
            uploads.remove(upload_dir(), stored)
            raise
        else:
            resp = render_template(
                "market/delivery_recorded.html",
                p=p,
                d=recorded.delivery,
                codes=rating_codes(recorded),
            )
            return resp, 201, {"Cache-Control": "no-store"}
    tz = _tz(p.community_id)
    return render_template(
        "market/delivery_form.html",
        p=p,
        members=members,
        residents=residents,
        open_needs=open_needs,
        form=request.form,
        errors=errors,
        default_end=local_input(datetime.now(tz), tz),
    ), status


@bp.route("/deliveries/<int:delivery_id>")
@login_required
def delivery(delivery_id: int):  # type: ignore[no-untyped-def]
    """A recorded session (never shows the rating codes again)."""
    d = delivery_service.get_visible_delivery(current_user, delivery_id)
    return render_template("market/delivery.html", d=d, p=d.project)


@bp.route("/deliveries/<int:delivery_id>/photo")
@login_required
def delivery_photo(delivery_id: int):  # type: ignore[no-untyped-def]
    d = delivery_service.get_visible_delivery(current_user, delivery_id)
    return send_upload(d.photo_path)


# --- notifications ----------------------------------------------------------------

NOTIFICATION_TEXTS = {
    "project.submit": _l("项目「%(title)s」已提交审核。"),
    "project.withdraw": _l("项目「%(title)s」已撤回为草稿。"),
    "project.approve": _l("项目「%(title)s」审核通过。"),
    "project.reject": _l("项目「%(title)s」未通过审核：%(comment)s"),
    "project.request_changes": _l("项目「%(title)s」需修改：%(comment)s"),
    "project.complete": _l("项目「%(title)s」已结项。"),
    "project.cancel": _l("项目「%(title)s」已取消。"),
    "project.awaiting_review": _l("新项目「%(title)s」等待您审核。"),
    "team.requested": _l("%(member)s 申请加入「%(title)s」。"),
    "team.approved": _l("您已加入「%(title)s」团队。"),
    "team.declined": _l("「%(title)s」婉拒了您的入队申请。"),
    "team.left": _l("%(member)s 退出了「%(title)s」。"),
    "need.posted_for_you": _l("网格员为您发布了需求「%(title)s」。"),
    "need.ordered": _l("%(resident)s 预约了「%(title)s」。"),
    "need.claimed": _l("您的需求「%(title)s」已被 %(member)s 认领。"),
    "need.dispatched": _l("需求「%(title)s」已派给您。"),
    "need.released": _l("需求「%(title)s」已放回需求池。"),
    "need.cancelled": _l("需求「%(title)s」已取消。"),
    "need.closed": _l("您的需求「%(title)s」已完成服务。"),
    "delivery.recorded": _l("「%(title)s」的服务记录已登记。"),
    "delivery.please_rate": _l("请为「%(title)s」的服务评价。"),
    "delivery.no_show": _l("您在「%(title)s」的服务中被记为缺席。"),
    # ratings and settlement: never the rater's identity
    "rating.received": _l("「%(title)s」收到一条 %(score)s 星评价。"),
    "rating.changed": _l("「%(title)s」的一条评价改为 %(score)s 星。"),
    "rating.replied": _l("%(member)s 回复了您对「%(title)s」的评价。"),
    "rating.proxy_entered": _l("%(by)s 代您为「%(title)s」评了 %(score)s 星。"),
    "points.earned": _l("「%(title)s」已结算，您获得 %(points)s 积分：%(reason)s"),
    "points.none": _l("「%(title)s」已结算，本次 0 积分（服务时长已记录）：%(reason)s"),
}


def notification_text(note: Any) -> str:
    """Return the message of a notification in the page's language."""
    template = NOTIFICATION_TEXTS.get(note.kind)
    params = {"title": "", "comment": "", "member": "", "resident": "", **(note.params or {})}
    if template is None:
        return str(params.get("title") or note.kind)
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return str(params.get("title") or note.kind)


def notification_link(note: Any) -> str | None:
    if note.object_type == "project" and note.object_id:
        return url_for("web_market.project", project_id=note.object_id)
    if note.object_type == "need" and note.object_id:
        return url_for("web_market.needs", _anchor=f"need-{note.object_id}")
    if note.object_type == "delivery" and note.object_id:
        return url_for("web_market.delivery", delivery_id=note.object_id)
    return None


@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def notifications():  # type: ignore[no-untyped-def]
    """My notifications, newest first; POST marks them read (all, or one ``id``)."""
    if request.method == "POST":
        raw = request.form.get("id", "")
        ids = [int(raw)] if raw.isdigit() else None
        with atomic():
            notification_service.mark_read(current_user, ids)
        return redirect(url_for("web_market.notifications"))
    page = _page_arg()
    rows, total = _page(notification_service.list_for(current_user), page)
    return render_template(
        "market/notifications.html",
        notes=[(n, notification_text(n), notification_link(n)) for n in rows],
        total=total,
        page=page,
        per_page=PER_PAGE,
        unread=notification_service.unread_count(current_user),
    )
