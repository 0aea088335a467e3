"""Reading redemptions: get one, the lists a user may see, the pickup-code lookup, the
dict a page or the API shows, and how much of a reward a member may still redeem.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    COUNTED_STATUSES,
    Area,
    Redemption,
    RedemptionStatus,
    Reward,
    Role,
    User,
    utcnow,
)
from .. import permissions
from ..errors import NotFound
from ..rewards import MAX_ID
from .codes import code_digest, normalise_code, pickup_code
from .periods import community_zone, period_start


def get_redemption(redemption_id: int) -> Redemption:
    """Return the redemption or raise :class:`NotFound`."""
    if not 1 <= redemption_id <= MAX_ID:
        raise NotFound("Redemption not found.")
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None:
        raise NotFound("Redemption not found.")
    return redemption


def get_visible_redemption(actor: User, redemption_id: int) -> Redemption:
    """Return the redemption if ``actor`` may see it; :class:`NotFound` otherwise."""
    redemption = get_redemption(redemption_id)
    if not permissions.may(actor, "redemption.view", redemption):
        raise NotFound("Redemption not found.")
    return redemption


def redemption_community(member: User, reward: Reward) -> int | None:
    """Return the community of ``member``'s member role inside the reward's scope
    (the lowest id if several), or None."""
    found = sorted(
        cid
        for g in member.grants
        if g.role == Role.MEMBER
        and g.area is not None
        and reward.area.covers(g.area)
        and (cid := permissions.community_id_of(g.area)) is not None
    )
    return found[0] if found else None


def used_in_period(member_id: int, reward: Reward, now: datetime, zone: ZoneInfo) -> int:
    """Return how many items of ``reward`` the member holds or received this period."""
    start = period_start(reward.limit_period, now, zone)
    stmt = sa.select(sa.func.coalesce(sa.func.sum(Redemption.quantity), 0)).where(
        Redemption.member_id == member_id,
        Redemption.reward_id == reward.id,
        Redemption.status.in_(list(COUNTED_STATUSES)),
    )
    if start is not None:
        stmt = stmt.where(Redemption.created_at >= start)
    return int(db.session.execute(stmt).scalar_one())


def remaining_allowance(member: User, reward: Reward, now: datetime | None = None) -> int | None:
    """Return how many more items the member may request this period (None: no limit)."""
    if reward.per_member_limit is None:
        return None
    now = now or utcnow()
    zone = community_zone(redemption_community(member, reward))
    return max(0, reward.per_member_limit - used_in_period(member.id, reward, now, zone))


def redemptions_stmt(
    actor: User,
    *,
    mine: bool = False,
    status: RedemptionStatus | None = None,
    reward_id: int | None = None,
    community_id: int | None = None,
) -> sa.Select[Any]:
    """Return a SELECT of the redemptions ``actor`` may see (own, plus those of the
    communities they are secretary of, plus an officer's subtree), newest first."""
    r = Redemption
    visible: list[sa.ColumnElement[bool]] = [r.member_id == actor.id]
    if not mine:
        if permissions.is_admin(actor):
            visible.append(sa.true())
        secretary_of = permissions.communities_of(actor, [Role.SECRETARY])
        if secretary_of:
            visible.append(r.community_id.in_(sorted(secretary_of)))
        officer_paths = [a.path for a in permissions.grant_areas(actor, [Role.OFFICER])]
        if officer_paths:
            under = sa.select(Area.id).where(
                sa.or_(*[Area.path.startswith(p, autoescape=True) for p in officer_paths])
            )
            visible.append(r.community_id.in_(under))
    stmt = sa.select(r).where(sa.or_(*visible))
    if status is not None:
        stmt = stmt.where(r.status == status)
    if reward_id is not None:
        stmt = stmt.where(r.reward_id == reward_id)
    if community_id is not None:
        stmt = stmt.where(r.community_id == community_id)
    return stmt.order_by(r.id.desc())


def find_held_by_code(actor: User, raw_code: Any) -> Redemption | None:
    """Return the held redemption with this pickup code that ``actor`` may hand over."""
    code = normalise_code(raw_code)
    if code is None:
        return None
    redemption = db.session.execute(
        sa.select(Redemption).where(
            Redemption.pickup_code_hash == code_digest(code),
            Redemption.status == RedemptionStatus.HELD,
        )
    ).scalar_one_or_none()
    if redemption is None or not permissions.may(actor, "redemption.handle", redemption):
        return None
    return redemption


def present(redemption: Redemption, viewer: User | None) -> dict[str, Any]:
    """Return the redemption as a dict; the pickup code only for its member while held."""
    own_held = (
        viewer is not None
        and viewer.id == redemption.member_id
        and redemption.status == RedemptionStatus.HELD
    )
    return {
        "id": redemption.id,
        "reward_id": redemption.reward_id,
        "reward_name": redemption.reward.name,
        "sponsor": redemption.reward.sponsor,
        "member_id": redemption.member_id,
        "member_name": redemption.member.display_name,
        "community_id": redemption.community_id,
        "quantity": redemption.quantity,
        "cost_each": redemption.cost_each,
        "total": redemption.total,
        "status": redemption.status.value,
        "expires_at": redemption.expires_at,
        "reason": redemption.reason,
        "decided_by_id": redemption.decided_by_id,
        "hold_transaction_id": redemption.hold_transaction_id,
        "final_transaction_id": redemption.final_transaction_id,
        "created_at": redemption.created_at,
        "updated_at": redemption.updated_at,
        "pickup_code": pickup_code(redemption) if own_held else None,
    }
