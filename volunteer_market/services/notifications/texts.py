"""The text of every notification kind, for the inbox page and the channels outside the
app (e-mail, the community's group robot): one table, rendered in the reader's language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

#: The message of each notification kind; ``params`` of the notification fill it in.
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
    # sessions
    "session.promoted": _l("「%(title)s」的活动有空位了，您已从候补转为报名成功。"),
    "session.cancelled": _l("您报名的「%(title)s」活动已取消。"),
    "session.reminder": _l("提醒：您报名的「%(title)s」将于 %(when)s 在 %(place)s 开始。"),
    # ratings and settlement: never the rater's identity
    "rating.received": _l("「%(title)s」收到一条 %(score)s 星评价。"),
    "rating.changed": _l("「%(title)s」的一条评价改为 %(score)s 星。"),
    "rating.replied": _l("%(member)s 回复了您对「%(title)s」的评价。"),
    "rating.proxy_entered": _l("%(by)s 代您为「%(title)s」评了 %(score)s 星。"),
    "points.earned": _l("「%(title)s」已结算，您获得 %(points)s 积分：%(reason)s"),
    "appeal.filed": _l("社区有一条新的申诉。"),
    "callback.disputed": _l(
        "社区书记回访时记下了您对「%(title)s」代评的异议。您可以在 14 天内对这条代评提出申诉。"
    ),
    "appeal.decided": _l("申诉已裁决：%(decision_text)s。%(reason)s"),
    "points.none": _l("「%(title)s」已结算，本次 0 积分（服务时长已记录）：%(reason)s"),
    # points moved by hand, reversed, expired; redemptions
    "points.adjusted": _l("社区为您调整了 %(amount)s 积分：%(reason)s"),
    "points.reversed": _l("一笔积分已被冲正（%(amount)s 分）：%(reason)s"),
    "points.expired": _l("您 %(year)s 年的 %(amount)s 积分已过期。"),
    "redemption.held": _l(
        "已为您预留「%(reward)s」×%(quantity)s，冻结 %(total)s 积分，请按时领取。"
    ),
    "redemption.expiring": _l("您兑换的奖品即将过期，请尽快领取。"),
    "redemption.fulfilled": _l("「%(reward)s」×%(quantity)s 已领取。"),
    "redemption.cancelled": _l("「%(reward)s」的兑换已取消，%(total)s 积分已退回。"),
    "redemption.rejected": _l("「%(reward)s」的兑换被拒绝，%(total)s 积分已退回：%(reason)s"),
    "redemption.expired": _l("「%(reward)s」未按时领取，兑换已过期，%(total)s 积分已退回。"),
    # accounts and onboarding
    "user.password_reset": _l("社区为您重置了密码，请登录后修改。"),
    "registration.submitted": _l("%(name)s 申请到社区报到，等待您审核。"),
    "registration.approved": _l("您的报到申请已通过，可以用手机号登录。"),
    "import.finished": _l("导入已完成：新增 %(created)s，更新 %(updated)s，未导入 %(refused)s。"),
    # annual evaluation
    "evaluation.published": _l(
        "%(community)s %(year)s 年度考核名单开始公示 %(days)s 天，如有异议请在公示期内提出。"
    ),
    "evaluation.objection_filed": _l("%(community)s %(year)s 年度考核名单收到一条异议，请答复。"),
    "evaluation.objection_upheld": _l("您对 %(year)s 年度考核名单的异议成立：%(answer)s"),
    "evaluation.objection_dismissed": _l("您对 %(year)s 年度考核名单的异议不成立：%(answer)s"),
    "evaluation.final": _l("%(community)s %(year)s 年度考核名单公示结束，已定稿。"),
}


#: A community message (the group robot): the community's view of an event.
COMMUNITY_TEXTS = {
    "project.approve": _l("新项目「%(title)s」已发布，欢迎报名参加。"),
    "project.complete": _l("项目「%(title)s」已结项。"),
    "project.cancel": _l("项目「%(title)s」已取消。"),
    "evaluation.published": NOTIFICATION_TEXTS["evaluation.published"],
    "evaluation.final": NOTIFICATION_TEXTS["evaluation.final"],
}


def render_text(
    kind: str,
    params: dict[str, Any] | None,
    *,
    decision_label: Callable[[Any], str] | None = None,
    texts: dict[str, Any] = NOTIFICATION_TEXTS,
) -> str:
    """Return the message of ``kind`` filled with ``params`` in the current language.

    ``decision_label`` shows an appeal's stored decision (``appeal.decided``); without
    it the sentence leaves the decision out. An unknown kind or a missing parameter
    gives the title or a generic sentence, never the raw kind.
    """
    template = texts.get(kind)
    values: dict[str, Any] = {
        "title": "",
        "comment": "",
        "member": "",
        "resident": "",
        "reason": "",
    }
    values.update({k: v for k, v in (params or {}).items() if v is not None})
    if "decision" in values:  # appeal.decided: the stored value shown through its label
        values["decision_text"] = (
            decision_label(values["decision"]) if decision_label is not None else ""
        )
    if template is None:  # never the raw kind
        return str(values.get("title") or _("您有一条新通知。"))
    try:
        return str(template) % values
    except (KeyError, TypeError, ValueError):
        return str(values.get("title") or _("您有一条新通知。"))
