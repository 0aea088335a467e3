"""Demo data of the rewards shop: rewards of 龙湖东岸社区, 紫荆花社区 and 龙阳街
from the community and its partner units (中百超市, 社区医院 ...), and redemptions in
every state, all through the services.

Idempotent: rewards are found by (area, name); points and redemptions carry fixed
idempotency keys; a transition is taken only while the redemption is still held.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from ..database import atomic
from ..extensions import db
from ..models import RedemptionStatus, Reward, utcnow
from ..services import ledger as ledger_service
from ..services import redemptions as redemption_service
from ..services import rewards as reward_service
from .common import LONGHU, LONGYANG, ZIJING, demo_area, demo_user

#: key, manager, area path, fields
REWARDS: list[tuple[str, str, tuple[str, ...], dict[str, Any]]] = [
    (
        "shopping",
        "secretary_lh",
        LONGHU,
        {
            "name": "中百超市 20 元购物券",
            "description": "共建单位中百超市（龙阳店）提供，结账时出示使用，当月有效。",
            "sponsor": "中百超市",
            "cost": 50,
            "stock": 30,
            "per_member_limit": 2,
            "limit_period": "month",
        },
    ),
    (
        "checkup",
        "secretary_lh",
        LONGHU,
        {
            "name": "社区医院 免费体检券",
            "description": "汉阳区社区卫生服务中心提供：血常规、血压、血糖、心电图各一次。",
            "sponsor": "社区卫生服务中心",
            "cost": 100,
            "stock": 10,
            "per_member_limit": 1,
            "limit_period": "year",
        },
    ),
    (
        "haircut",
        "secretary_lh",
        LONGHU,
        {
            "name": "爱心理发券",
            "description": "社区爱心理发室理发一次（周二、周四上午）。",
            "sponsor": "社区爱心理发室",
            "cost": 20,
            "per_member_limit": 4,
            "limit_period": "month",
        },
    ),
    (
        "library",
        "officer_ly",
        LONGYANG,
        {
            "name": "街道图书馆 年度借阅卡",
            "description": "龙阳街文化站图书馆借阅卡，一年内每次可借 5 本。",
            "sponsor": "龙阳街文化站",
            "cost": 30,
            "stock": 50,
            "per_member_limit": 1,
            "limit_period": "year",
        },
    ),
    (
        "carwash",
        "secretary_zj",
        ZIJING,
        {
            "name": "洗车券",
            "description": "共建单位汉阳汽修提供，普通洗车一次。",
            "sponsor": "汉阳汽修",
            "cost": 25,
            "stock": 20,
        },
    ),
]

#: member, secretary who adjusts, points (fixed keys)
POINTS = [
    ("member_chen", "secretary_lh", 120),
    ("member_liu", "secretary_lh", 80),
    ("member_zhao", "secretary_lh", 60),
    ("member_sun", "secretary_zj", 50),
]

#: key, member, reward key, quantity, outcome, days ago
REDEMPTIONS = [
    ("demo:redeem:1", "member_chen", "haircut", 1, "held", 0),
    ("demo:redeem:2", "member_liu", "shopping", 1, "fulfilled", 2),
    ("demo:redeem:3", "member_zhao", "haircut", 1, "cancelled", 1),
    ("demo:redeem:4", "member_chen", "checkup", 1, "rejected", 3),
    ("demo:redeem:5", "member_liu", "library", 1, "expired", 30),
    ("demo:redeem:6", "member_sun", "carwash", 1, "held", 0),
]


def _reward(area_path: tuple[str, ...], manager: str, fields: dict[str, Any]) -> Reward:
    area = demo_area(area_path)
    found = db.session.execute(
        sa.select(Reward).where(Reward.area_id == area.id, Reward.name == fields["name"])
    ).scalar_one_or_none()
    if found is not None:
        return found
    return reward_service.create_reward(demo_user(manager), area_id=area.id, **fields)


def load() -> None:
    """Load the rewards demo (idempotent)."""
    rewards: dict[str, Reward] = {}
    with atomic():
        for key, manager, path, fields in REWARDS:
            rewards[key] = _reward(path, manager, fields)
        for username, secretary, amount in POINTS:
            ledger_service.adjust(
                demo_user(secretary),
                demo_user(username),
                amount,
                "补录：2026 年社区志愿服务积分（兑换演示）",
                idempotency_key=f"demo:rewards:points:{username}",
            )
    now = utcnow()
    for key, username, reward_key, quantity, outcome, days_ago in REDEMPTIONS:
        with atomic():
            member = demo_user(username)
            issued = redemption_service.request(
                member,
                rewards[reward_key],
                quantity,
                idempotency_key=key,
                now=now - timedelta(days=days_ago),
            )
            redemption = issued.redemption
            if redemption.status != RedemptionStatus.HELD or outcome == "held":
                continue
            reviewer = demo_user("secretary_zj" if username == "member_sun" else "secretary_lh")
            if outcome == "fulfilled":
                redemption_service.fulfil(reviewer, redemption, issued.pickup_code)
            elif outcome == "cancelled":
                redemption_service.cancel(member, redemption)
            elif outcome == "rejected":
                redemption_service.reject(reviewer, redemption, "本月体检名额已满，请下月再兑换。")
            elif outcome == "expired":
                redemption_service.expire_hold(redemption.id, now)
