"""Demo data of ratings and settlement in 龙湖东岸社区, through the services.

On the deliveries of ``demo.projects`` (recorded in the last days):

* 义务理发, 2 h, 陈党员 + 刘党员, for 王奶奶 and 李爷爷: 王奶奶 rates 5 herself, the grid
  worker enters 4 for 李爷爷 (proxy) -> settled automatically: average 4.5, x1.2,
  **24 points each** (the contract example);
* 健康义诊: two of three residents rated (5 and 4), 陈党员 replied -> awaiting;
* 代买药 and the latest 义务理发: not rated yet -> awaiting.

Older sessions recorded "back then" (their rating windows have closed):

* 义务理发 12 days ago, 王奶奶 rated 5, 周阿姨 did not -> settled by 王书记 after the
  window (x1.2: 陈党员 24, 刘党员 12);
* 代买药 10 days ago without beneficiaries -> settled unrated by 王书记 (x1.0);
* 义务理发 9 days ago for 李爷爷, nobody rated -> waits in the settlement queue.

Idempotent: nothing is added once any delivery of the community has a rating or a
settlement.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from ..database import atomic
from ..extensions import db
from ..models import (
    Delivery,
    DeliveryBeneficiary,
    DeliveryStatus,
    Project,
    Rating,
    Settlement,
    User,
    utcnow,
)
from ..services import deliveries as delivery_service
from ..services import ratings, settlement
from .common import LONGHU, area_by_path, demo_user


def _project(community_id: int, title: str) -> Project | None:
    return db.session.execute(
        sa.select(Project).where(Project.community_id == community_id, Project.title == title)
    ).scalar_one_or_none()


def _awaiting(project: Project, beneficiaries: set[int]) -> Delivery | None:
    """Return the newest awaiting delivery of ``project`` for exactly these beneficiaries."""
    for delivery in db.session.execute(
        sa.select(Delivery)
        .where(
            Delivery.project_id == project.id,
            Delivery.status == DeliveryStatus.AWAITING_RATINGS,
        )
        .order_by(Delivery.started_at.desc())
    ).scalars():
        ids = set(
            db.session.scalars(
                sa.select(DeliveryBeneficiary.user_id).where(
                    DeliveryBeneficiary.delivery_id == delivery.id
                )
            )
        )
        if ids == beneficiaries:
            return delivery
    return None


def _rate(
    user: User,
    delivery: Delivery,
    score: int,
    comment: str | None,
    *,
    on_behalf_of: int | None = None,
    now: datetime | None = None,
) -> None:
    """Rate ``delivery`` as ``user`` (for ``on_behalf_of``) if its window is open at ``now``."""
    if not ratings.window_open(delivery, now):
        return
    with atomic():
        ratings.rate(
            user,
            delivery_service.get_delivery(delivery.id),
            score,
            comment,
            on_behalf_of=on_behalf_of,
            now=now,
        )


def _record_back_then(
    recorder: User,
    project: Project,
    *,
    days_ago: int,
    parts: list[tuple[User, int]],
    beneficiaries: list[User],
) -> tuple[Delivery, datetime]:
    """Record a session as it was recorded ``days_ago`` days ago (window now closed)."""
    recorded_at = utcnow() - timedelta(days=days_ago)
    started = recorded_at - timedelta(hours=4)
    length = max(m for _u, m in parts)
    with atomic():
        recorded = delivery_service.record_delivery(
            recorder,
            project_id=project.id,
            started_at=started,
            ended_at=started + timedelta(minutes=length),
            participants=[(u.id, m) for u, m in parts],
            beneficiaries=[b.id for b in beneficiaries],
            now=recorded_at,
        )
    return recorded.delivery, recorded_at


def load() -> None:
    """Load the ratings and settlement demo (idempotent)."""
    longhu = area_by_path(LONGHU)
    if longhu is None:
        return
    in_longhu = sa.select(Delivery.id).where(Delivery.community_id == longhu.id)
    done = (
        db.session.execute(
            sa.select(Rating.id).where(Rating.delivery_id.in_(in_longhu)).limit(1)
        ).first()
        or db.session.execute(
            sa.select(Settlement.id).where(Settlement.community_id == longhu.id).limit(1)
        ).first()
    )
    haircut = _project(longhu.id, "义务理发")
    clinic = _project(longhu.id, "健康义诊")
    errand = _project(longhu.id, "代买药")
    if done or haircut is None:
        return
    chen, liu, zhao = demo_user("member_chen"), demo_user("member_liu"), demo_user("member_zhao")
    wang, li, zhou = (
        demo_user("resident_wang"),
        demo_user("resident_li"),
        demo_user("resident_zhou"),
    )
    grid, secretary = demo_user("grid_lh1"), demo_user("secretary_lh")

    # The contract example: 2 h, rated 5 and 4 -> 24 points each, settled automatically.
    contract = _awaiting(haircut, {wang.id, li.id})
    if contract is not None:
        _rate(wang, contract, 5, "理发很仔细，还帮我吹干了头发。")
        _rate(grid, contract, 4, "李爷爷口述：师傅很耐心。", on_behalf_of=li.id)

    # Two of three rated, a member's reply: awaiting the last resident.
    if clinic is not None:
        checkup = _awaiting(clinic, {wang.id, li.id, zhou.id})
        if checkup is not None:
            _rate(wang, checkup, 5, "量了血压，讲得很清楚。")
            _rate(zhou, checkup, 4, None)
            with atomic():
                rating = db.session.execute(
                    sa.select(Rating).where(
                        Rating.delivery_id == checkup.id, Rating.beneficiary_id == wang.id
                    )
                ).scalar_one_or_none()
                if rating is not None:
                    ratings.reply(chen, rating, "谢谢王奶奶，下个月我们还来。")

    # Windows that have closed: settled by the secretary, and one waiting in the queue.
    old, recorded_at = _record_back_then(
        chen, haircut, days_ago=12, parts=[(chen, 120), (liu, 60)], beneficiaries=[wang, zhou]
    )
    _rate(wang, old, 5, "很满意。", now=recorded_at + timedelta(hours=2))
    with atomic():
        settlement.settle(secretary, delivery_service.get_delivery(old.id))
    if errand is not None:
        unrated, _at = _record_back_then(
            zhao, errand, days_ago=10, parts=[(zhao, 60)], beneficiaries=[]
        )
        with atomic():
            settlement.settle(
                secretary, delivery_service.get_delivery(unrated.id), confirm_unrated=True
            )
    _record_back_then(chen, haircut, days_ago=9, parts=[(chen, 90)], beneficiaries=[li])
