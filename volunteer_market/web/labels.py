"""Display names for stored enum values, translatable.

The database and the API store English values (``grid_worker``, ``community``,
``changes_requested``); pages show these labels instead: Chinese msgids (the zh_CN
default) with English in ``translations/en``. :func:`register` makes the ``*_label``
helpers Jinja globals (``role_label(value)``, ``project_status_label(p.status)`` ...);
each takes an enum member or its stored value and falls back to the value itself.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from ..models import (
    AppealStatus,
    AreaKind,
    CallbackOutcome,
    Category,
    DeliveryStatus,
    NeedStatus,
    ProjectAction,
    ProjectMode,
    ProjectStatus,
    ReportStatus,
    Role,
    TeamStatus,
)

ROLE_LABELS = {
    Role.MEMBER: _l("下沉党员"),
    Role.RESIDENT: _l("居民"),
    Role.GRID_WORKER: _l("网格员"),
    Role.SECRETARY: _l("社区书记"),
    Role.OFFICER: _l("街道/区管理员"),
    Role.ADMIN: _l("系统管理员"),
}

AREA_KIND_LABELS = {
    AreaKind.DISTRICT: _l("区"),
    AreaKind.STREET: _l("街道"),
    AreaKind.COMMUNITY: _l("社区"),
    AreaKind.GRID: _l("网格"),
}

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
APPEAL_STATUS_LABELS = {
    AppealStatus.OPEN: _l("待裁决"),
    AppealStatus.UPHELD: _l("申诉成立"),
    AppealStatus.DISMISSED: _l("已驳回"),
}

REPORT_STATUS_LABELS = {
    ReportStatus.OPEN: _l("待处理"),
    ReportStatus.HIDDEN: _l("已隐藏"),
    ReportStatus.DISMISSED: _l("已驳回"),
}
CALLBACK_OUTCOME_LABELS = {
    CallbackOutcome.CONFIRMED: _l("属实"),
    CallbackOutcome.DISPUTED: _l("有异议"),
    CallbackOutcome.UNREACHABLE: _l("联系不上"),
}
EVALUATION_STATUS_LABELS = {
    "closed": _l("已关账（未公示）"),
    "in_notice": _l("公示中"),
    "final": _l("已定稿"),
}
OBJECTION_STATUS_LABELS = {
    "open": _l("待答复"),
    "upheld": _l("成立"),
    "dismissed": _l("不成立"),
}

DELIVERY_STATUS_LABELS = {
    DeliveryStatus.AWAITING_RATINGS: _l("待评价"),
    DeliveryStatus.SETTLED: _l("已结算"),
    DeliveryStatus.CANCELLED: _l("已作废"),
}


def label(table: dict[Any, Any], value: Any) -> str:
    """Return the label of ``value`` (an enum member or its stored value) in ``table``,
    or the value itself when it has none."""
    if value is None:
        return ""
    text = table.get(value)
    if text is None:
        for key, candidate in table.items():
            if str(key) == str(value):
                return str(candidate)
        return str(value)
    return str(text)


def role_label(value: Any) -> str:
    """Return the display name of a role (an enum member or its stored value)."""
    return label(ROLE_LABELS, value)


def area_kind_label(value: Any) -> str:
    """Return the display name of an area kind (an enum member or its stored value)."""
    return label(AREA_KIND_LABELS, value)


def category_label(value: Any) -> str:
    return label(CATEGORY_LABELS, value)


def mode_label(value: Any) -> str:
    return label(MODE_LABELS, value)


def project_status_label(value: Any) -> str:
    return label(PROJECT_STATUS_LABELS, value)


def action_label(value: Any) -> str:
    return label(ACTION_LABELS, value)


def need_status_label(value: Any) -> str:
    return label(NEED_STATUS_LABELS, value)


def team_status_label(value: Any) -> str:
    return label(TEAM_STATUS_LABELS, value)


def delivery_status_label(value: Any) -> str:
    return label(DELIVERY_STATUS_LABELS, value)


SIGNAL_LABELS = {
    "repeat_rater": _l("同一居民反复评价同一党员"),
    "reciprocal_rating": _l("党员互相以居民身份评价"),
    "all_five_streak": _l("连续全五星"),
    "odd_hours": _l("深夜或凌晨的服务"),
    "overlap": _l("同一党员服务时间重叠"),
    "chronic_no_show": _l("多次缺席"),
    "rated_from_recorder": _l("评价来自登记人的同一地址"),
    "disputed_callback": _l("代评回访有异议"),
}


def signal_label(value: Any) -> str:
    return label(SIGNAL_LABELS, value)


def appeal_status_label(value: Any) -> str:
    return label(APPEAL_STATUS_LABELS, value)


def report_status_label(value: Any) -> str:
    return label(REPORT_STATUS_LABELS, value)


def callback_outcome_label(value: Any) -> str:
    return label(CALLBACK_OUTCOME_LABELS, value)


def evaluation_status_label(value: Any) -> str:
    return label(EVALUATION_STATUS_LABELS, value)


def objection_status_label(value: Any) -> str:
    return label(OBJECTION_STATUS_LABELS, value)


#: The target groups offered as check boxes on the project form. They are stored as
#: typed (the Chinese word, like a group a member types himself); pages show the label.
TARGET_GROUP_LABELS = {
    "空巢老人": _l("空巢老人"),
    "独居老人": _l("独居老人"),
    "残疾人": _l("残疾人"),
    "儿童": _l("儿童"),
    "青少年": _l("青少年"),
    "困难家庭": _l("困难家庭"),
    "全体居民": _l("全体居民"),
}


def target_group_label(value: str) -> str:
    """Return the label of a suggested target group, or a typed one as it is."""
    return label(TARGET_GROUP_LABELS, value)


def hours_of(minutes: int) -> str:
    """Return ``minutes`` as hours without trailing zeros (``90`` -> ``1.5``)."""
    return f"{minutes / 60:g}"


def register(app: Flask) -> None:
    """Make the label helpers available to every template."""
    app.jinja_env.globals.update(
        role_label=role_label,
        area_kind_label=area_kind_label,
        category_label=category_label,
        mode_label=mode_label,
        project_status_label=project_status_label,
        action_label=action_label,
        need_status_label=need_status_label,
        team_status_label=team_status_label,
        delivery_status_label=delivery_status_label,
        appeal_status_label=appeal_status_label,
        evaluation_status_label=evaluation_status_label,
        objection_status_label=objection_status_label,
        signal_label=signal_label,
        report_status_label=report_status_label,
        callback_outcome_label=callback_outcome_label,
        target_group_label=target_group_label,
        hours_of=hours_of,
    )
