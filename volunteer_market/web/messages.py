"""The page-language text of the English messages that schemas and services give.

Schemas and services speak English: the API returns their messages as they are
(API.md), and they know nothing of the page's language. A page shows the Chinese
msgid from here instead (English in ``translations/en``): :func:`message_text` looks a
message up, first in :data:`MESSAGES` (exact texts), then in :data:`PATTERNS`
(marshmallow's range and length messages, and the services' messages that carry a
number, a state or a name). A message found nowhere is shown as it is.

``tests/foundation/test_form_messages.py`` reads every message the services and
schemas can raise and checks that each one is found here: a new message needs an
entry (and its English in the catalog) before it can reach a page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

from .labels import (
    area_kind_label,
    delivery_status_label,
    need_status_label,
    project_status_label,
    role_label,
    team_status_label,
)

_REQUIRED = _l("必填。")
_INTEGER = _l("请输入整数。")
_DATETIME = _l("请输入有效的日期时间。")
_CHOOSE = _l("请从选项中选择。")
_UNKNOWN_FIELD = _l("不支持的字段。")
_END_AFTER_START = _l("结束时间必须晚于开始时间。")
_ONE_DISPATCH_TARGET = _l("请选择派单对象（项目或党员，只选一个）。")
_CODE_OR_TOKEN = _l("请提供评价码或二维码链接（二选一）。")
_REWARD_RETIRED = _l("该奖品已下架。")
_WRONG_PICKUP_CODE = _l("取货码不正确。")

#: Exact English messages -> page text.
MESSAGES: dict[str, Any] = {
    # marshmallow's own messages (fields and schemas)
    "Missing data for required field.": _REQUIRED,
    "Field may not be null.": _REQUIRED,
    "Invalid value.": _l("无效的值。"),
    "Invalid type.": _l("格式不正确。"),
    "Invalid input type.": _l("格式不正确。"),
    "Not a valid string.": _l("请输入文字。"),
    "Not a valid utf-8 string.": _l("请输入文字。"),
    "Not a valid integer.": _INTEGER,
    "Not a valid number.": _l("请输入数字。"),
    "Number too large.": _l("数字太大。"),
    "Special numeric values (nan or infinity) are not permitted.": _l("请输入数字。"),
    "Not a valid boolean.": _l("请选择是或否。"),
    "Not a valid datetime.": _DATETIME,
    "Not a valid aware datetime.": _DATETIME,
    "Not a valid naive datetime.": _DATETIME,
    "Not a valid date.": _l("请输入有效的日期。"),
    "The start date is after the end date.": _l("开始日期不能晚于结束日期。"),
    "Give at least one term to change.": _l("请至少修改一项规则。"),
    "Bad period.": _l("统计期间不正确。"),
    # notifications outside the app
    "E-mail needs an address.": _l("选择邮件通知需要填写邮箱地址。"),
    "Not a valid email address.": _l("请输入有效的邮箱地址。"),
    "This server does not send e-mail.": _l("本平台未开通邮件通知。"),
    "Not an allowed webhook URL.": _l("请填写企业微信群机器人的 https 地址。"),
    "Only the community's secretary and officers over it see this.": _l(
        "只有本社区书记和上级街道、区管理员可以查看。"
    ),
    "A year (2026), quarter (2026-Q4) or month (2026-11).": _l(
        "请填写年（2026）、季度（2026-Q4）或月（2026-11）。"
    ),
    "Not a valid tuple.": _l("每行须填两个数：最低平均分和系数。"),
    "Minimum averages must decrease from row to row.": _l(
        "各行的最低平均分须从高到低排列，且不能重复。"
    ),
    "Not a valid list.": _l("格式不正确。"),
    "Not a valid mapping type.": _l("格式不正确。"),
    "String does not match expected pattern.": _l("格式不正确。"),
    "Unknown field.": _UNKNOWN_FIELD,
    # schemas
    "Must not contain NUL characters.": _l("不能包含空字符（NUL）。"),
    "Must not contain control characters.": _l("不能包含控制字符或文字方向字符。"),
    "Must be after starts_at.": _END_AFTER_START,
    "Must be after started_at.": _END_AFTER_START,
    "Must be after the start.": _END_AFTER_START,
    "Must be after active_from.": _l("结束日期必须晚于开始日期。"),
    "Required to reject or request changes.": _l("驳回或退回修改时必须填写理由。"),
    "At least one minute.": _l("至少一分钟。"),
    "Give exactly one of project_id and member_id.": _ONE_DISPATCH_TARGET,
    "Must not be 0.": _l("不能为 0。"),
    "Give a score or a comment.": _l("请打分或填写评语。"),
    "Six digits.": _l("请输入 6 位数字。"),
    "Give either the six-digit code or the QR token.": _CODE_OR_TOKEN,
    "Use all, a year (2026), a quarter (2026-Q4) or a month (2026-11).": _l(
        "请选择全部、某年（2026）、某季度（2026-Q4）或某月（2026-11）。"
    ),
    "One of month, quarter, year, all.": _CHOOSE,
    "A date and time with an offset.": _DATETIME,
    "Must be text.": _l("请输入文字。"),
    "Invalid text.": _l("请输入文字。"),
    "A whole number.": _INTEGER,
    "Integer.": _INTEGER,
    "From 1.": _l("不能小于 1。"),
    # general refusals
    "Required.": _REQUIRED,
    "You are not allowed to do this.": _l("您没有权限进行此操作。"),
    "Invalid username or password.": _l("用户名或密码错误。"),
    "Unknown fields.": _UNKNOWN_FIELD,
    # areas, users, role grants
    "Area not found.": _l("区域不存在。"),
    "User not found.": _l("用户不存在。"),
    "Unknown area.": _l("未知区域。"),
    "Unknown parent area.": _l("未知的上级区域。"),
    "An area of this kind cannot be placed here.": _l("这类区域不能放在这里。"),
    "An area with this name already exists here.": _l("此处已有同名区域。"),
    "Password too short.": _l("密码太短。"),
    "Taken.": _l("已被使用。"),
    "This username is taken.": _l("该用户名已被使用。"),
    "Use 3 to 64 letters, Chinese characters, digits, _ . or - "
    "(a Chinese name may have 2); not only digits.": _l(
        "用户名为 3 到 64 个字母、汉字、数字或 _ . -（中文名可以是 2 个字），不能全是数字。"
    ),
    "Not a valid mobile phone number (11 digits, e.g. 13812345678).": _l(
        "请输入有效的手机号（11 位数字，如 13812345678）。"
    ),
    "This phone number belongs to another account.": _l("该手机号已属于另一个账号。"),
    "Change your password first (POST /api/v1/me/password).": _l("请先修改密码。"),
    "The current password is wrong.": _l("原密码不正确。"),
    # self-registration
    "Register as a member or a resident.": _l("请选择在职党员或居民。"),
    "This phone number already has an account: sign in with it.": _l(
        "该手机号已有账号，请直接登录。"
    ),
    "A registration of this phone number is already waiting.": _l(
        "该手机号的报到申请正在等待审核。"
    ),
    "Registration not found.": _l("报到申请不存在。"),
    "This registration has already been decided.": _l("该报到申请已经审核过了。"),
    # bulk import
    "Import not found.": _l("导入记录不存在。"),
    "Invalid input.": _l("输入有误。"),
    "Upload a CSV or XLSX file.": _l("请上传 CSV 或 Excel（.xlsx）文件。"),
    "Not a CSV file in UTF-8 or GB18030.": _l("不是 UTF-8 或 GB18030 编码的 CSV 文件。"),
    "Not a readable CSV file.": _l("无法读取这个 CSV 文件。"),
    "Not a readable XLSX file.": _l("无法读取这个 Excel 文件。"),
    "A column is named twice in the header row.": _l("表头中有重复的列名。"),
    "The header row needs the columns 姓名 (display_name) and 手机号 (phone).": _l(
        "表头必须包含“姓名”和“手机号”两列。"
    ),
    "The file has no data rows.": _l("文件中没有数据行。"),
    "A name is required.": _l("请填写姓名。"),
    "No grid of this name in the community.": _l("本社区没有这个名称的网格。"),
    "This phone number belongs to a person of another community.": _l(
        "该手机号属于其他社区的人员。"
    ),
    "This phone number belongs to a staff account.": _l("该手机号属于工作人员账号，不能导入。"),
    "Admin is a global role.": _l("系统管理员是全局角色，不属于任何区域。"),
    "Must be empty for admin.": _l("系统管理员不能指定区域。"),
    "An area is required.": _l("请选择区域。"),
    "This role cannot be held on this kind of area.": _l("这个角色不能授予在这类区域上。"),
    "The user already holds this role here.": _l("该用户在此区域已有这个角色。"),
    "This role grant has already ended.": _l("该角色授权已结束。"),
    # projects and teams
    "Project not found.": _l("项目不存在。"),
    "Not a community.": _l("请选择社区。"),
    "Unknown community.": _l("未知社区。"),
    "Unknown decision.": _l("请选择审核结果。"),
    "approve, reject or request_changes.": _l("请选择审核结果。"),
    "A comment is required.": _l("必须填写理由。"),
    "The comment is too long.": _l("理由太长。"),
    "The end must be after the start.": _END_AFTER_START,
    "Capacity below the current team size.": _l("人数上限不能低于当前团队人数。"),
    "The project changed meanwhile; reload and try again.": _l("项目刚刚已被修改，请刷新后重试。"),
    "You lead this project.": _l("您是这个项目的负责人。"),
    "You are already on this team.": _l("您已在这个团队中。"),
    "You have already asked to join.": _l("您已申请加入，请等待审批。"),
    "The team is full.": _l("团队已满。"),
    "No team request from this user.": _l("该用户没有入队申请。"),
    "The team request changed meanwhile; reload and try again.": _l(
        "入队申请刚刚已被处理，请刷新后重试。"
    ),
    "You are not on this team.": _l("您不在这个团队中。"),
    "The owner cannot leave; cancel the project instead.": _l(
        "项目负责人不能退出团队；如需停止，请取消项目。"
    ),
    # needs
    "Need not found.": _l("需求不存在。"),
    "Not a resident of this community.": _l("不是本社区居民。"),
    "Not a member of this community.": _l("不是本社区党员。"),
    "Not an approved project of this community.": _l("不是本社区已通过的项目。"),
    "Only the community's grid workers post for residents.": _l(
        "只有本社区的网格员可以代居民发布需求。"
    ),
    "Only menu services can be ordered.": _l("只有服务菜单可以预约。"),
    "You cannot claim your own need.": _l("不能认领自己的需求。"),
    "The resident cannot serve their own need.": _l("居民不能为自己的需求服务。"),
    "This need has already been taken.": _l("该需求已被认领。"),
    "Give either a project or a member.": _ONE_DISPATCH_TARGET,
    "Exactly one of project_id and member_id.": _ONE_DISPATCH_TARGET,
    # deliveries
    "Delivery not found.": _l("服务记录不存在。"),
    "The delivery has invalid fields.": _l("服务记录有填写错误。"),
    "At least one participant.": _l("至少选择一名参与者。"),
    "Must not be in the future.": _l("不能晚于当前时间。"),
    "A session lasts at most 24 hours.": _l("单次服务不超过 24 小时。"),
    "More than the session length.": _l("不能超过本次服务时长。"),
    "Listed twice.": _l("重复填写。"),
    "Not the owner or an active team member.": _l("不是项目负责人或在队队员。"),
    "Not a need of this community.": _l("不是本社区的需求。"),
    "This need was given to another project.": _l("该需求已派给其他项目。"),
    "The member it was given to must take part.": _l("接单的党员必须参与本次服务。"),
    "A participant already has a delivery overlapping this session.": _l(
        "有参与者在这个时段已有其他服务记录。"
    ),
    "Could not allocate a rating code; try again.": _l("未能生成评价码，请重试。"),
    "Only the recorder or the project owner may change the photo.": _l(
        "只有登记人或项目负责人可以更换照片。"
    ),
    # uploads
    "The file is empty.": _l("文件为空。"),
    "The image is too large.": _l("图片不能超过 2 MB。"),
    "The image must be at most 2 MB.": _l("图片不能超过 2 MB。"),
    "Unsupported image type.": _l("仅支持 PNG、JPEG 或 WebP 图片。"),
    "Only PNG, JPEG or WebP images.": _l("仅支持 PNG、JPEG 或 WebP 图片。"),
    "The file is not a valid PNG, JPEG or WebP image.": _l(
        "文件不是有效的 PNG、JPEG 或 WebP 图片（可能已损坏）。"
    ),
    "The image has more than 40 megapixels.": _l("图片不能超过 4000 万像素。"),
    # ratings and settlement
    "Rating not found.": _l("评价不存在。"),
    "The score must be a whole number from 1 to 5.": _l("请点选 1 到 5 颗星。"),
    "Text is required.": _l("请填写内容。"),
    "The text is too long.": _l("内容太长。"),
    "Nothing to change.": _l("没有需要修改的内容。"),
    "Not a beneficiary of this delivery.": _l("不是本次服务的受益居民。"),
    "on_behalf_of must be a beneficiary of this delivery.": _l(
        "代评对象必须是本次服务的受益居民。"
    ),
    "Participants never rate their own delivery.": _l("参与服务的人不能评价自己的服务。"),
    "This delivery has already been rated for this beneficiary.": _l("这位居民已评价过本次服务。"),
    "This delivery has been settled; its ratings are closed.": _l("本次服务已结算，评价已关闭。"),
    "You have already replied to this rating.": _l("您已回复过这条评价。"),
    # appeals
    "Appeal not found.": _l("申诉不存在。"),
    # comment moderation and call-backs
    "Report not found.": _l("举报不存在。"),
    "This rating has no comment to report.": _l("这条评价没有评语，无需举报。"),
    "This rating has no comment to hide.": _l("这条评价没有评语，无需隐藏。"),
    "This comment is already hidden.": _l("这条评语已被隐藏。"),
    "This comment is not hidden.": _l("这条评语没有被隐藏。"),
    "This comment was hidden by the community's secretary; it cannot be changed.": _l(
        "这条评语已被社区书记隐藏，不能修改。"
    ),
    "You have already reported this comment.": _l("您已经举报过这条评语。"),
    "This report has already been resolved.": _l("这条举报已处理。"),
    "Only the community's secretary reads its reports.": _l("只有本社区书记可以查看举报。"),
    "Only the community's secretary calls its proxy ratings back.": _l(
        "只有本社区书记可以回访代评。"
    ),
    "Unknown outcome.": _l("未知的回访结果。"),
    "One of confirmed, disputed, unreachable.": _l("请选择：属实、有异议或联系不上。"),
    "Only proxy ratings are called back.": _l("只有代评需要回访。"),
    "This rating has already been called back.": _l("这条代评已回访过。"),
    "Only a member who served in the delivery, or the resident in whose name a proxy "
    "rating was entered, may appeal it.": _l(
        "只有参与本次服务的党员，或被代评的居民本人，才能申诉。"
    ),
    "Appeals are filed within 14 days; this rating is older.": _l(
        "申诉须在 14 天内提出，这条评价已超过期限。"
    ),
    "Appeals are filed within 14 days; this transaction is older.": _l(
        "申诉须在 14 天内提出，这笔积分已超过期限。"
    ),
    "Only a points award (an earn or an adjustment) can be appealed.": _l(
        "只能对积分发放（结算或调整）提出申诉。"
    ),
    "Give either rating_id or transaction_id.": _l("请指定一条评价或一笔积分（二选一）。"),
    "You already have an open appeal about this.": _l("您对此已有一条待裁决的申诉。"),
    "The decision is upheld or dismissed.": _l("裁决结果只能是“申诉成立”或“驳回”。"),
    "This appeal has already been decided.": _l("这条申诉已经裁决过了。"),
    "An upheld appeal of a rating needs the amount to adjust.": _l(
        "评价申诉成立时，请填写要调整的积分。"
    ),
    "Required when a member's rating appeal is upheld.": _l("党员的评价申诉成立时必填。"),
    "A dismissed appeal posts nothing.": _l("驳回的申诉不动积分。"),
    "Only with upheld.": _l("仅在申诉成立时填写。"),
    "This appeal concerns no single member; it is upheld without an amount.": _l(
        "这条申诉不涉及单个党员，成立时不填积分（冲正本次服务的积分）。"
    ),
    "Not for a resident's appeal.": _l("居民的申诉不填积分。"),
    "The delivery has posted no points; there is nothing to reverse.": _l(
        "本次服务没有发放积分，无需冲正。"
    ),
    # rating slips
    "Every beneficiary has already rated this delivery.": _l("受益居民都已评价，无需发放评价卡。"),
    "This delivery takes no more ratings; no slip can be issued.": _l(
        "本次服务已不再接受评价，不能发放评价卡。"
    ),
    "user_id must be a beneficiary of this delivery.": _l("该用户不是本次服务的受益居民。"),
    "user_id is invalid.": _l("用户编号无效。"),
    "Invalid.": _l("无效。"),
    "Give either code or token.": _CODE_OR_TOKEN,
    "This rating code is not valid: it may be mistyped, already used or expired.": _l(
        "这个评价码无效：可能输错了、已经用过或已过期。"
    ),
    "This delivery has already been settled.": _l("本次服务已结算。"),
    "This delivery has not been settled.": _l("本次服务尚未结算。"),
    "Nobody rated this delivery. Confirm to settle it unrated "
    "(confirm_unrated: true; multiplier 1.0).": _l(
        "本次服务无人评价。如确认按无评价结算（系数 1.0），请勾选确认后再结算。"
    ),
    "Required when nobody rated.": _l("无人评价时须勾选确认。"),
    # points ledger
    "Transaction not found.": _l("交易不存在。"),
    "Not enough points.": _l("可用积分不足。"),
    "Not a member.": _l("不是党员。"),
    "The user is not a member of any community.": _l("该用户不是任何社区的党员。"),
    "A reason is required.": _l("必须填写原因。"),
    "The reason is too long.": _l("原因太长。"),
    "The amount must be an integer.": _l("积分数必须是整数。"),
    "The amount must be non-zero and at most 100000 either way.": _l(
        "积分数不能为 0，增减均不超过 100000。"
    ),
    "A reversal cannot itself be reversed.": _l("冲正交易不能再被冲正。"),
    "This kind of transaction cannot be reversed.": _l("这类交易不能冲正。"),
    "Holds and redemptions are undone through the redemption, not reversed.": _l(
        "冻结和兑换须通过兑换单撤销，不能冲正。"
    ),
    "This transaction has already been reversed.": _l("该交易已被冲正。"),
    "This delivery has already earned points for this member.": _l(
        "该党员已因本次服务获得过积分。"
    ),
    "This idempotency key was already used for another operation.": _l(
        "该请求标识已用于其他操作。"
    ),
    "This idempotency key was already used for another request.": _l("该请求标识已用于其他请求。"),
    # points policies
    "Points policy not found.": _l("积分规则不存在。"),
    "Invalid policy terms.": _l("积分规则条款无效。"),
    "Unknown policy terms.": _l("未知的积分规则条款。"),
    "Unknown rule.": _l("未知规则。"),
    "Unknown expiry rule.": _l("未知的过期规则。"),
    "Another policy version was created just now; try again.": _l(
        "刚刚有人创建了新的积分规则版本，请重试。"
    ),
    "A list of [minimum average 1..5, multiplier 0..5], highest minimum first.": _l(
        "请填写 [最低平均分 1~5, 系数 0~5] 的列表，最低平均分从高到低排列。"
    ),
    # rankings
    "Unknown period.": _l("未知的时间段。"),
    "Unknown exposure.": _CHOOSE,
    "Use full, top_n or tiers.": _CHOOSE,
    "0 < gold < silver < bronze <= 100.": _l("须满足 0 < 金牌 < 银牌 < 铜牌 ≤ 100。"),
    "Tier percentiles must increase: 0 < gold < silver < bronze <= 100.": _l(
        "档位比例须递增：0 < 金牌 < 银牌 < 铜牌 ≤ 100。"
    ),
    "N must be between 1 and 1000.": _l("前 N 名须在 1 ~ 1000 之间。"),
    "Choose a community, street or district.": _l("请选择社区、街道或区。"),
    "Not a grid.": _l("请选择网格。"),
    "Bad paging.": _l("分页参数有误。"),
    # annual report and annual evaluation
    "Bad year.": _l("年度有误。"),
    "1 to 1000 characters.": _l("请填写 1 至 1000 个字。"),
    "Write 1 to 1000 characters.": _l("请填写 1 至 1000 个字。"),
    "A year can be closed only after it has ended.": _l("年度结束后才能关账。"),
    "Not over yet.": _l("该年度尚未结束。"),
    "Answer every objection first.": _l("请先答复所有异议。"),
    "Open.": _l("仍有未答复的异议。"),
    "Bad amount.": _l("更正积分有误。"),
    "Non-zero, at most 100000 either way.": _l("不能为 0，绝对值不超过 100000。"),
    "Bad decision.": _l("请选择成立或不成立。"),
    "upheld or dismissed.": _l("请选择成立或不成立。"),
    "Bad notice period.": _l("公示天数有误。"),
    "This step is not possible in the evaluation's current state.": _l(
        "考核当前状态下不能进行这一步。"
    ),
    "This year is already closed for the community.": _l("本社区该年度已关账。"),
    "Closed.": _l("已关账。"),
    "Community not found.": _l("社区不存在。"),
    "Evaluation not found.": _l("考核不存在。"),
    "Objection not found.": _l("异议不存在。"),
    "This objection names no member.": _l("该异议未指明党员，不能更正积分。"),
    "No member named.": _l("未指明党员。"),
    "Nobody corrects their own points.": _l("不能更正自己的积分。"),
    "Not on this list.": _l("该用户不在考核名单中。"),
    "Not on the list.": _l("不在名单中。"),
    "Notice running.": _l("公示期未结束。"),
    "The notice period has not ended yet.": _l("公示期尚未结束。"),
    "Objections can be filed only during the notice period.": _l("只能在公示期内提出异议。"),
    "Only an upheld objection corrects points.": _l("只有成立的异议才能更正积分。"),
    "Upheld only.": _l("仅限成立的异议。"),
    "Only objections of a list in notice can be answered.": _l("只能答复公示中名单的异议。"),
    "The evaluation changed meanwhile; reload it.": _l("考核状态已变化，请刷新。"),
    "This objection has already been answered.": _l("该异议已答复。"),
    "Not a verification code.": _l("验证码格式不对。"),
    "16 characters 0-9, A-F.": _l("应为 16 位数字或字母 A–F。"),
    # rewards and redemptions
    "Reward not found.": _l("奖品不存在。"),
    "Redemption not found.": _l("兑换单不存在。"),
    "The reward has invalid fields.": _l("奖品信息有填写错误。"),
    "Unknown reward fields.": _UNKNOWN_FIELD,
    "A retired reward cannot be edited.": _l("已下架的奖品不能修改。"),
    "This reward has already been retired.": _REWARD_RETIRED,
    "This reward has been retired.": _REWARD_RETIRED,
    "This reward is paused.": _l("该奖品已暂停兑换。"),
    "This reward is not open yet.": _l("该奖品尚未开始兑换。"),
    "This reward is no longer offered.": _l("该奖品的兑换期已结束。"),
    "Not enough of this reward is left.": _l("库存不足。"),
    "The quantity must be a whole number.": _l("数量必须是整数。"),
    "The pickup code has eight digits.": _l("取货码为 8 位数字。"),
    "The pickup code is wrong.": _WRONG_PICKUP_CODE,
    "Wrong pickup code.": _WRONG_PICKUP_CODE,
    "The pickup code is wrong; too many wrong codes, tries are locked for a while.": _l(
        "取货码错误；错误次数过多，已暂时锁定，请稍后再试。"
    ),
    "Too many wrong pickup codes for this redemption; try again later.": _l(
        "这张兑换单的取货码输错次数过多，已暂时锁定，请稍后再试。"
    ),
    "Too many wrong pickup codes; try again later.": _l(
        "您输错取货码的次数过多，已暂时锁定，请稍后再试。"
    ),
    "Could not allocate a pickup code; try again.": _l("未能生成取货码，请重试。"),
    "This redemption has already been handed over.": _l("该兑换单已核销。"),
    "This redemption has been cancelled.": _l("该兑换单已取消。"),
    "This redemption has been rejected.": _l("该兑换单已被拒绝。"),
    "This redemption has expired.": _l("该兑换单已过期。"),
    "This redemption has not expired yet.": _l("该兑换单尚未过期。"),
    "This redemption was closed by someone else just now.": _l("该兑换单刚刚已被他人处理。"),
    # sessions and attendance
    "Session not found.": _l("未找到该活动场次。"),
    "The session has invalid fields.": _l("活动场次填写有误。"),
    "The session is already cancelled.": _l("该活动场次已取消。"),
    "The session is cancelled.": _l("该活动场次已取消。"),
    "The session is over.": _l("该活动场次已结束。"),
    "The session is not over yet.": _l("活动尚未结束。"),
    "The session has started; it can no longer be cancelled.": _l("活动已开始，不能再取消报名。"),
    "You are already signed up for this session.": _l("您已报名（或候补）本场活动。"),
    "You are not signed up for this session.": _l("您没有报名本场活动。"),
    "You hold no place in this session: sign up first.": _l("您在本场活动没有名额，请先报名。"),
    "That member holds no place in this session.": _l("该党员在本场活动没有名额。"),
    "Not signed up for this session.": _l("未报名本场活动。"),
    "Give either the check-in code or a member's user_id.": _l(
        "请填写签到码，或选择一名党员（二选一）。"
    ),
    "Give either code or user_id.": _l("请填写签到码，或选择一名党员（二选一）。"),
    "Wrong or expired check-in code.": _l("签到码不正确或已过期。"),
    "Wrong or expired code.": _l("签到码不正确或已过期。"),
    "Check-in opens 30 minutes before the session.": _l("活动开始前 30 分钟才能签到。"),
    "Check-in for this session is closed.": _l("本场活动的签到已关闭。"),
    "Already checked in.": _l("已签到。"),
    "Already checked out.": _l("已签退。"),
    "Not checked in.": _l("尚未签到。"),
    "The session's delivery is already recorded.": _l("本场活动的服务记录已生成。"),
    "This session's delivery is already recorded.": _l("本场活动的服务记录已生成。"),
}


def _kinds(value: str) -> str:
    return "、".join(area_kind_label(k.strip()) for k in value.split(","))


def _expected_kind(value: str) -> str:
    return area_kind_label(value)


_NEED_VERBS = {
    "cancelled": _l("取消"),
    "closed": _l("完成"),
    "dispatched": _l("派单"),
    "released": _l("放回需求池"),
}
_PROJECT_VERBS = {
    "edited": _l("编辑"),
    "submitted": _l("提交审核"),
    "withdrawn": _l("撤回"),
    "approved": _l("通过"),
    "rejected": _l("驳回"),
    "sent back for changes": _l("退回修改"),
    "completed": _l("结项"),
    "cancelled": _l("取消"),
}
_LIMIT_PERIODS = {
    "month": _l("每月"),
    "quarter": _l("每季度"),
    "year": _l("每年"),
    "all time": _l("每人累计"),
}


def _from(table: dict[str, Any]) -> Callable[[str], str]:
    return lambda value: str(table.get(value, value))


@dataclass(frozen=True)
class Pattern:
    """A message with parts that vary: ``regex`` names its parts, ``text`` is the page
    text with ``%(name)s`` placeholders, ``show`` turns a part into page text (a state
    into its label ...)."""

    regex: re.Pattern[str]
    text: Any
    show: dict[str, Callable[[str], str]] = field(default_factory=dict)

    def render(self, message: str) -> str | None:
        m = self.regex.match(message)
        if m is None:
            return None
        parts = {k: self.show.get(k, str)(v) for k, v in m.groupdict().items()}
        return str(self.text) % parts


def _p(regex: str, text: Any, **show: Callable[[str], str]) -> Pattern:
    return Pattern(re.compile(regex), text, show)


_RANGE = _l("取值范围：%(lo)s ~ %(hi)s。")

#: Messages with varying parts, tried in order after :data:`MESSAGES`.
PATTERNS: list[Pattern] = [
    # marshmallow's validators
    _p(
        r"^Must be greater than(?: or equal to)? (?P<lo>\S+) "
        r"and less than(?: or equal to)? (?P<hi>\S+)\.$",
        _RANGE,
    ),
    _p(r"^Must be greater than or equal to (?P<n>\S+)\.$", _l("不能小于 %(n)s。")),
    _p(r"^Must be greater than (?P<n>\S+)\.$", _l("必须大于 %(n)s。")),
    _p(r"^Must be less than or equal to (?P<n>\S+)\.$", _l("不能大于 %(n)s。")),
    _p(r"^Must be less than (?P<n>\S+)\.$", _l("必须小于 %(n)s。")),
    _p(
        r"^Length must be between (?P<lo>\d+) and (?P<hi>\d+)\.$",
        _l("长度为 %(lo)s ~ %(hi)s 个字。"),
    ),
    _p(r"^Shorter than minimum length (?P<n>\d+)\.$", _l("至少 %(n)s 个字。")),
    _p(r"^Longer than maximum length (?P<n>\d+)\.$", _l("不超过 %(n)s 个字。")),
    _p(r"^Length must be (?P<n>\d+)\.$", _l("长度须为 %(n)s 个字。")),
    _p(r"^Must be one of: .*\.$", _CHOOSE),
    # numbers and lengths the services name
    _p(r"^From (?P<lo>-?\d+) to (?P<hi>-?\d+)\.$", _RANGE),
    _p(
        r"^(?:A whole number|An integer) from (?P<lo>-?\d+) to (?P<hi>-?\d+)\.$",
        _l("请输入 %(lo)s ~ %(hi)s 之间的整数。"),
    ),
    _p(r"^Non-zero, from -(?P<n>\d+) to (?P=n)\.$", _l("不能为 0，取值范围：-%(n)s ~ %(n)s。")),
    _p(r"^The quantity must be from 1 to (?P<n>\d+)\.$", _l("数量须在 1 ~ %(n)s 之间。")),
    _p(r"^At least (?P<n>\d+) characters\.$", _l("至少 %(n)s 个字符。")),
    _p(r"^At most (?P<n>\d+) characters\.$", _l("不超过 %(n)s 个字。")),
    _p(r"^At most (?P<n>\d+) rows per file\.$", _l("每个文件最多 %(n)s 行。")),
    _p(r"^The same phone number is on row (?P<n>\d+)\.$", _l("与第 %(n)s 行的手机号重复。")),
    _p(
        r"^Unknown household tag: (?P<tag>.+)\. Use: (?P<known>.+)\.$",
        _l("未知的家庭标签：%(tag)s。可用：%(known)s。"),
    ),
    _p(r"^(?P<n>\d+) digits\.$", _l("请输入 %(n)s 位数字。")),
    _p(r"^At least the current team size \((?P<n>\d+)\)\.$", _l("不能少于当前团队人数（%(n)s）。")),
    _p(r"^At most (?P<n>\d+) hours per delivery\.$", _l("每次服务最多计 %(n)s 小时。")),
    _p(r"^Sessions must be recorded within (?P<n>\d+) days\.$", _l("服务须在 %(n)s 天内登记。")),
    # areas and role grants
    _p(r"^Expected nothing here\.$", _l("这里不能再添加下级区域。")),
    _p(r"^Expected (?P<kind>\w+) here\.$", _l("这里应为「%(kind)s」。"), kind=_expected_kind),
    _p(
        r"^(?P<role>\w+) is granted on: (?P<kinds>[\w, ]+)\.$",
        _l("「%(role)s」只能授予在：%(kinds)s。"),
        role=role_label,
        kinds=_kinds,
    ),
    # states
    _p(
        r"^A project that is (?P<status>\w+) cannot be (?P<verb>[\w ]+)\.$",
        _l("项目当前为「%(status)s」，不能%(verb)s。"),
        status=project_status_label,
        verb=_from(_PROJECT_VERBS),
    ),
    _p(
        r"^A project that is (?P<status>\w+) takes no deliveries\.$",
        _l("项目当前为「%(status)s」，不能登记服务。"),
        status=project_status_label,
    ),
    _p(
        r"^A project that is (?P<status>\w+) takes no sessions\.$",
        _l("项目当前为「%(status)s」，不能发布活动场次。"),
        status=project_status_label,
    ),
    _p(
        r"^A project that is (?P<status>\w+) takes no orders\.$",
        _l("项目当前为「%(status)s」，不能预约。"),
        status=project_status_label,
    ),
    _p(
        r"^The team of a project that is (?P<status>\w+) is closed\.$",
        _l("项目当前为「%(status)s」，团队不再接受申请。"),
        status=project_status_label,
    ),
    _p(
        r"^The request is (?P<status>\w+), not pending\.$",
        _l("该申请当前为「%(status)s」，不是待审批。"),
        status=team_status_label,
    ),
    _p(
        r"^A need that is (?P<status>\w+) cannot be (?P<verb>\w+)\.$",
        _l("需求当前为「%(status)s」，不能%(verb)s。"),
        status=need_status_label,
        verb=_from(_NEED_VERBS),
    ),
    _p(
        r"^A delivery that is (?P<status>\w+) cannot be changed\.$",
        _l("服务记录当前为「%(status)s」，不能修改。"),
        status=delivery_status_label,
    ),
    _p(
        r"^A delivery that is (?P<status>\w+) takes no ratings\.$",
        _l("服务记录当前为「%(status)s」，不能评价。"),
        status=delivery_status_label,
    ),
    _p(
        r"^A delivery that is (?P<status>\w+) cannot be settled\.$",
        _l("服务记录当前为「%(status)s」，不能结算。"),
        status=delivery_status_label,
    ),
    # deliveries: a participant or beneficiary by id
    _p(
        r"^User (?P<id>\d+) has an overlapping delivery\.$",
        _l("用户 %(id)s 在这个时段已有其他服务记录。"),
    ),
    _p(
        r"^User (?P<id>\d+) is not a resident of this community\.$",
        _l("用户 %(id)s 不是本社区居民。"),
    ),
    _p(r"^User (?P<id>\d+) is not on the team\.$", _l("用户 %(id)s 不在团队中。")),
    _p(
        r"^User (?P<id>\d+) took part and cannot be a beneficiary\.$",
        _l("用户 %(id)s 参与了服务，不能同时作为受益居民。"),
    ),
    _p(r"^User (?P<id>\d+) took part\.$", _l("用户 %(id)s 参与了服务。")),
    # ratings and settlement
    _p(
        r"^You have already rated this delivery \(rating (?P<id>\d+)\); "
        r"change that rating instead\.$",
        _l("您已评价过本次服务（评价 #%(id)s），如需更改请修改那条评价。"),
    ),
    _p(
        r"^This beneficiary has already rated this delivery \(rating (?P<id>\d+)\); "
        r"change that rating instead\.$",
        _l("这位居民已评价过本次服务（评价 #%(id)s），如需更改请修改那条评价。"),
    ),
    _p(
        r"^The rating window of this delivery closed at (?P<at>\S+)\.$",
        _l("本次服务的评价期已于 %(at)s 结束。"),
    ),
    _p(
        r"^The rating window is open until (?P<until>\S+); settle after it closes "
        r"\(it settles by itself when every beneficiary has rated\)\.$",
        _l("评价期到 %(until)s 结束，请在评价期结束后结算（所有受益居民都评价后会自动结算）。"),
    ),
    # redemptions
    _p(
        r"^You may redeem at most (?P<limit>\d+) of this reward per (?P<period>[\w ]+); "
        r"you already have (?P<used>\d+)\.$",
        _l("这件奖品%(period)s最多兑换 %(limit)s 件，您已兑换 %(used)s 件。"),
        period=_from(_LIMIT_PERIODS),
    ),
]


def message_text(message: str) -> str:
    """Return the page-language text of an English schema or service message (the
    message itself if it is unknown)."""
    text = MESSAGES.get(message)
    if text is not None:
        return str(text)
    for pattern in PATTERNS:
        shown = pattern.render(message)
        if shown is not None:
            return shown
    return message


def is_known(message: str) -> bool:
    """True if :func:`message_text` has a page text for ``message``."""
    return message in MESSAGES or any(p.regex.match(message) for p in PATTERNS)
