"""The default points policy and two secretary adjustments in 龙湖东岸社区.

Idempotent: the policy is created only when missing, and each adjustment carries a
fixed idempotency key, so a second load posts nothing.
"""

from __future__ import annotations

from ..database import atomic
from ..services import ledger as ledger_service
from ..services import points_policy
from .common import demo_user

#: idempotency key, member, points, reason (adjusted by 王书记, secretary_lh)
ADJUSTMENTS: list[tuple[str, str, int, str]] = [
    ("demo:adjust:1", "member_chen", 20, "补录：2026 年 10 月社区防汛值守"),
    ("demo:adjust:2", "member_liu", 15, "补录：重阳节敬老活动组织工作"),
]


def load() -> None:
    """Create the default points policy and post the adjustments (idempotent)."""
    with atomic():
        points_policy.ensure_default_policy()
        secretary = demo_user("secretary_lh")
        for key, username, amount, reason in ADJUSTMENTS:
            ledger_service.adjust(
                secretary, demo_user(username), amount, reason, idempotency_key=key
            )
