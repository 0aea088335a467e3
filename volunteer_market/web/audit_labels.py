"""Display names for the audit log page (审计日志): actions, object types, detail keys,
detail values and the origin of an entry, translatable.

The audit log stores machine vocabulary (``project.approve``, ``ledger_transaction``,
``{"from": "submitted", "to": "approved"}``, origin ``cli`` or an IP address); the API
returns it as stored, and the page shows these labels instead (zh_CN msgids, English in
``translations/en``). An action, type or key without a label is shown as stored, so a new
one is never hidden from the auditor; ``tests/community/test_audit_labels.py`` checks that
every action the services write has a label.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..models import RedemptionStatus
from . import labels

OBJECT_TYPE_LABELS = {
    "api_token": _l("接口令牌"),
    "appeal": _l("申诉"),
    "area": _l("区域"),
    "delivery": _l("服务记录"),
    "evaluation": _l("年度考核"),
    "import_job": _l("批量导入"),
    "ledger_transaction": _l("积分记账"),
    "need": _l("群众需求"),
    "objection": _l("公示异议"),
    "points_policy": _l("积分规则"),
    "project": _l("微项目"),
    "rating": _l("评价"),
    "rating_reply": _l("评价回复"),
    "redemption": _l("积分兑换"),
    "registration": _l("报到申请"),
    "reward": _l("奖品"),
    "session": _l("活动场次"),
    "user": _l("账号"),
}

ACTION_LABELS = {
    "appeal.decide": _l("裁决申诉"),
    "appeal.file": _l("提交申诉"),
    "area.create": _l("创建区域"),
    "calendar.reset": _l("重置日历订阅链接"),
    "community.webhook_remove": _l("删除企业微信群机器人"),
    "community.webhook_set": _l("设置企业微信群机器人"),
    "notification_channels.set": _l("设置通知方式"),
    "session.cancel": _l("取消活动场次"),
    "session.check_in": _l("签到"),
    "session.check_out": _l("签退"),
    "session.create": _l("新建活动场次"),
    "session.deliver": _l("按签到生成服务记录"),
    "session.signup": _l("报名活动场次"),
    "session.signup_cancel": _l("取消报名"),
    "certificate.issue": _l("开具服务证明"),
    "comment.dismiss": _l("驳回评论举报"),
    "comment.hide": _l("隐藏评论"),
    "comment.report": _l("举报评论"),
    "comment.unhide": _l("恢复评论"),
    "delivery.photo": _l("上传服务照片"),
    "delivery.record": _l("登记服务"),
    "delivery.settle": _l("结算服务"),
    "delivery.slips_issued": _l("打印评价卡"),
    "evaluation.close": _l("年度关账"),
    "evaluation.finalize": _l("考核定稿"),
    "evaluation.objection": _l("提出公示异议"),
    "evaluation.objection_answer": _l("答复公示异议"),
    "evaluation.publish": _l("发布公示"),
    "import.fail": _l("导入失败"),
    "import.finish": _l("导入完成"),
    "import.start": _l("开始导入"),
    "ledger.adjust": _l("积分补录/调整"),
    "ledger.reverse": _l("冲正记账"),
    "need.cancel": _l("取消需求"),
    "need.claim": _l("认领需求"),
    "need.close": _l("完成需求"),
    "need.create": _l("提交需求"),
    "need.dispatch": _l("派单"),
    "need.order": _l("点单"),
    "need.release": _l("放弃认领"),
    "points.expire": _l("积分过期"),
    "points_policy.create": _l("发布积分规则新版本"),
    "project.approve": _l("通过项目"),
    "project.cancel": _l("取消项目"),
    "project.complete": _l("项目结项"),
    "project.cover": _l("更换项目封面"),
    "project.create": _l("创建项目"),
    "project.edit": _l("编辑项目"),
    "project.reject": _l("驳回项目"),
    "project.request_changes": _l("退回项目修改"),
    "project.submit": _l("提交项目审核"),
    "project.withdraw": _l("撤回项目"),
    "rankings.configure": _l("设置排行榜展示方式"),
    "rating.callback": _l("代评回访"),
    "rating.change": _l("修改评价"),
    "rating.create": _l("评价服务"),
    "rating.reply": _l("回复评价"),
    "redemption.cancelled": _l("取消兑换"),
    "redemption.code_failed": _l("取货码错误"),
    "redemption.code_locked": _l("取货码锁定"),
    "redemption.expired": _l("兑换过期"),
    "redemption.fulfilled": _l("兑换核销"),
    "redemption.rejected": _l("拒绝兑换"),
    "redemption.request": _l("申请兑换"),
    "registration.approve": _l("通过报到"),
    "registration.reject": _l("驳回报到"),
    "registration.submit": _l("提交报到"),
    "reward.create": _l("上架奖品"),
    "reward.image": _l("更换奖品图片"),
    "reward.retire": _l("下架奖品"),
    "reward.update": _l("修改奖品"),
    "role.grant": _l("授予角色"),
    "role.revoke": _l("撤销角色"),
    "session.end": _l("退出登录"),
    "team.approve": _l("批准入队"),
    "team.decline": _l("婉拒入队"),
    "team.leave": _l("退出团队"),
    "team.request": _l("申请入队"),
    "token.issue": _l("签发接口令牌"),
    "token.revoke": _l("吊销接口令牌"),
    "user.create": _l("创建账号"),
    "user.import_create": _l("导入创建账号"),
    "user.import_update": _l("导入更新账号"),
    "user.password": _l("修改密码"),
    "user.password_reset": _l("重置密码"),
}

DETAIL_KEY_LABELS = {
    "amount": _l("积分"),
    "changed": _l("改动"),
    "comment_changed": _l("评论已改"),
    "created": _l("新建"),
    "decision": _l("裁决"),
    "evaluation_id": _l("考核编号"),
    "exposure": _l("展示方式"),
    "fields": _l("改动的内容"),
    "notice_days": _l("公示天数"),
    "old_score": _l("原评分"),
    "refused": _l("拒绝"),
    "reverses_id": _l("冲正的记账编号"),
    "rows": _l("行数"),
    "set": _l("已设置"),
    "subject": _l("申诉对象"),
    "tiers": _l("分档（金/银/铜，百分比）"),
    "tokens_revoked": _l("吊销的令牌数"),
    "top_n": _l("公开名次"),
    "updated": _l("更新"),
    "version": _l("版本"),
    "automatic": _l("自动"),
    "average_score": _l("平均分"),
    "beneficiaries": _l("服务对象"),
    "beneficiary_id": _l("服务对象编号"),
    "callback_id": _l("回访编号"),
    "code": _l("编号"),
    "comment": _l("意见"),
    "confirmed_unrated": _l("确认无人评价"),
    "cost": _l("所需积分"),
    "delivery_id": _l("服务记录编号"),
    "dry_run": _l("试运行"),
    "email": _l("邮件通知"),
    "marked": _l("由负责人标记"),
    "promoted_id": _l("候补转正的报名编号"),
    "slots": _l("名额"),
    "failures": _l("失败次数"),
    "from": _l("原状态"),
    "grant_id": _l("授权编号"),
    "hidden_reason": _l("原隐藏理由"),
    "import_job_id": _l("导入编号"),
    "is_proxy": _l("代评"),
    "kind": _l("类型"),
    "lookup": _l("按取货码查找"),
    "member_id": _l("党员编号"),
    "minutes": _l("分钟"),
    "multiplier": _l("评分系数"),
    "need_id": _l("需求编号"),
    "no_shows": _l("缺席"),
    "on_behalf": _l("代为操作"),
    "outcome": _l("回访结果"),
    "participants": _l("参与党员"),
    "policy_id": _l("积分规则编号"),
    "policy_version": _l("积分规则版本"),
    "project_id": _l("项目编号"),
    "quantity": _l("数量"),
    "rating_id": _l("评价编号"),
    "ratings_count": _l("评价数"),
    "reason": _l("理由"),
    "report_id": _l("举报编号"),
    "reports_resolved": _l("处理的举报数"),
    "reward_id": _l("奖品编号"),
    "role": _l("角色"),
    "scope": _l("范围"),
    "score": _l("评分"),
    "settlement_id": _l("结算编号"),
    "sponsor": _l("提供单位"),
    "status": _l("状态"),
    "stock": _l("库存"),
    "to": _l("新状态"),
    "total": _l("总数"),
    "total_points": _l("总积分"),
    "transaction_id": _l("记账编号"),
    "user_id": _l("用户编号"),
    "via_code": _l("凭评价码"),
    "year": _l("年度"),
}

#: Names of the fields an edit changes (``changed`` / ``fields``): a project's, a reward's
#: and the terms of a points policy.
FIELD_LABELS = {
    "active_from": _l("开始兑换日期"),
    "active_to": _l("结束兑换日期"),
    "base_rate": _l("每小时基础积分"),
    "capacity": _l("团队人数上限"),
    "category": _l("服务类别"),
    "cost": _l("所需积分"),
    "description": _l("说明"),
    "ends_at": _l("结束时间"),
    "expiry_rule": _l("积分有效期"),
    "hours_cap_minutes": _l("每次服务计分时长上限"),
    "is_active": _l("上架"),
    "limit_period": _l("限兑周期"),
    "mode": _l("形式"),
    "multipliers": _l("评分系数"),
    "name": _l("名称"),
    "per_member_limit": _l("每人限兑"),
    "planned_minutes": _l("计划时长"),
    "rating_window_days": _l("评价期限（天）"),
    "redemption_hold_days": _l("兑换保留期（天）"),
    "skills": _l("所需技能"),
    "sponsor": _l("提供单位"),
    "starts_at": _l("开始时间"),
    "stock": _l("库存"),
    "target_groups": _l("服务对象群体"),
    "title": _l("标题"),
    "unrated_multiplier_percent": _l("无人评价时的系数（百分比）"),
}
EXPOSURE_LABELS = {"full": _l("完整名单"), "top_n": _l("只公开前几名"), "tiers": _l("分档")}

REDEMPTION_STATUS_LABELS = {
    RedemptionStatus.HELD: _l("待领取"),
    RedemptionStatus.FULFILLED: _l("已领取"),
    RedemptionStatus.CANCELLED: _l("已取消"),
    RedemptionStatus.REJECTED: _l("已拒绝"),
    RedemptionStatus.EXPIRED: _l("已过期"),
}
SESSION_STATUS_LABELS = {
    "scheduled": _l("已排期"),
    "signed_up": _l("已报名"),
    "waitlisted": _l("候补中"),
    "cancelled": _l("已取消"),
}
#: The status vocabulary of each audited object type (detail keys status/from/to).
STATUS_TABLES: dict[str, dict[Any, Any]] = {
    "project": labels.PROJECT_STATUS_LABELS,
    "need": labels.NEED_STATUS_LABELS,
    "delivery": labels.DELIVERY_STATUS_LABELS,
    "appeal": labels.APPEAL_STATUS_LABELS,
    "evaluation": labels.EVALUATION_STATUS_LABELS,
    "objection": labels.OBJECTION_STATUS_LABELS,
    "redemption": REDEMPTION_STATUS_LABELS,
    "session": SESSION_STATUS_LABELS,  # a session's or a sign-up's
}
SCOPE_LABELS = {"user": _l("账号"), "redemption": _l("本次兑换")}
IMPORT_KIND_LABELS = {"residents": _l("居民"), "members": _l("下沉党员")}


def audit_action_label(value: str) -> str:
    """The display name of an audit action (stored value when it has none)."""
    return labels.label(ACTION_LABELS, value)


def audit_object_label(value: str) -> str:
    """The display name of an audited object type."""
    return labels.label(OBJECT_TYPE_LABELS, value)


def audit_detail_key_label(key: str) -> str:
    """The display name of a key of an entry's detail."""
    return labels.label(DETAIL_KEY_LABELS, key)


def audit_detail_value(object_type: str, key: str, value: Any) -> str:
    """A detail value as the page shows it: states, roles and kinds by their labels,
    yes/no for flags, lists joined; anything else as stored."""
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, dict):  # {field: [before, after]} or {field: value}
        return _("；").join(
            _("%(key)s：%(value)s", key=labels.label(FIELD_LABELS, k), value=_change(v))
            for k, v in value.items()
        )
    if key == "fields" and isinstance(value, list):
        return _("、").join(labels.label(FIELD_LABELS, v) for v in value)
    if isinstance(value, list):
        return _("、").join(audit_detail_value(object_type, key, v) for v in value) or "-"
    if not isinstance(value, str):
        return "-" if value is None else str(value)
    if key in ("status", "from", "to") and object_type in STATUS_TABLES:
        return labels.label(STATUS_TABLES[object_type], value)
    if key == "role":
        return labels.role_label(value)
    if key == "kind" and object_type == "area":
        return labels.area_kind_label(value)
    if key == "kind" and object_type == "import_job":
        return labels.label(IMPORT_KIND_LABELS, value)
    if key == "outcome":
        return labels.callback_outcome_label(value)
    if key == "scope":
        return labels.label(SCOPE_LABELS, value)
    if key == "exposure":
        return labels.label(EXPOSURE_LABELS, value)
    if key == "decision":
        return labels.appeal_status_label(value)
    if key == "subject" and ":" in value:  # "rating:12"
        kind, _sep, number = value.partition(":")
        kind = "ledger_transaction" if kind == "transaction" else kind
        return f"{audit_object_label(kind)} #{number}"
    return value


def _change(value: Any) -> str:
    """A changed field's value: ``[before, after]`` as before → after."""
    if isinstance(value, list) and len(value) == 2:
        return f"{_change(value[0])} → {_change(value[1])}"
    if isinstance(value, bool):
        return _("是") if value else _("否")
    return "-" if value is None else str(value)


def audit_origin_label(value: str | None) -> str:
    """Where an entry came from: the command line, or the client's address as stored."""
    if not value:
        return ""
    if value == "cli":
        return _("命令行")
    return value


def register(app: Flask) -> None:
    """Make the audit label helpers available to every template."""
    app.jinja_env.globals.update(
        audit_action_label=audit_action_label,
        audit_object_label=audit_object_label,
        audit_detail_key_label=audit_detail_key_label,
        audit_detail_value=audit_detail_value,
        audit_origin_label=audit_origin_label,
    )
