"""Rules of rewards and redemptions.

A reward is offered to its area's subtree. Secretaries manage rewards of their own community
(or its grids), officers those in their subtree ("rewards at their level"). A redemption
belongs to the member's community inside the reward's scope: that community's secretary
hands it over (never their own) or rejects it.
"""

from __future__ import annotations

from typing import Any

from ...extensions import db
from ...models import Area, AreaKind, Redemption, Reward, Role, User
from .core import (
    grant_areas,
    holds,
    is_admin,
    rule,
)
from .projects import in_community


def manages_reward_area(actor: User, area: Area | None) -> bool:
    """Return True if ``actor`` may offer rewards on ``area``."""
    if area is None:
        return False
    if area.kind in (AreaKind.COMMUNITY, AreaKind.GRID) and holds(actor, Role.SECRETARY, area):
        return True
    return holds(actor, Role.OFFICER, area)


@rule("reward.create")
def _reward_create(actor: User, area: Area | None) -> bool:
    """Target: the area the reward would be offered on (``None``: on some area)."""
    if area is None:
        return bool(grant_areas(actor, [Role.SECRETARY, Role.OFFICER]))
    return manages_reward_area(actor, area)


@rule("reward.manage")
def _reward_manage(actor: User, reward: Reward) -> bool:
    """Edit, retire, change stock, see the stock report and the reward's redemptions."""
    return manages_reward_area(actor, reward.area)


@rule("reward.view")
def _reward_view(actor: User, reward: Reward) -> bool:
    """Anyone holding a role in the reward's subtree, its managers, officers above, admin."""
    if is_admin(actor) or manages_reward_area(actor, reward.area):
        return True
    return any(g.area is not None and reward.area.covers(g.area) for g in actor.grants)


@rule("reward.redeem")
def _reward_redeem(actor: User, reward: Reward) -> bool:
    """A member holding a member role in the reward's subtree."""
    return any(
        g.role == Role.MEMBER and g.area is not None and reward.area.covers(g.area)
        for g in actor.grants
    )


@rule("reward.shop")
def _reward_shop(actor: User, _target: Any) -> bool:
    """Has the reward shop: holds a member role somewhere."""
    return any(g.role == Role.MEMBER for g in actor.grants)


@rule("reward.manage_any")
def _reward_manage_any(actor: User, _target: Any) -> bool:
    """Has the reward management pages: a secretary or an officer."""
    return bool(grant_areas(actor, [Role.SECRETARY, Role.OFFICER]))


@rule("redemption.view")
def _redemption_view(actor: User, redemption: Redemption) -> bool:
    """The member, the community's secretary, officers above it, the admin."""
    if actor.id == redemption.member_id or is_admin(actor):
        return True
    if in_community(actor, Role.SECRETARY, redemption.community_id):
        return True
    area = db.session.get(Area, redemption.community_id)
    return area is not None and holds(actor, Role.OFFICER, area)


@rule("redemption.handle")
def _redemption_handle(actor: User, redemption: Redemption) -> bool:
    """Fulfil (on the pickup code) or reject: the community's secretary, never for
    their own redemption."""
    return actor.id != redemption.member_id and in_community(
        actor, Role.SECRETARY, redemption.community_id
    )


@rule("redemption.cancel")
def _redemption_cancel(actor: User, redemption: Redemption) -> bool:
    """The member who asked, or the community's secretary."""
    return actor.id == redemption.member_id or in_community(
        actor, Role.SECRETARY, redemption.community_id
    )


@rule("redemption.fulfil_page")
def _redemption_fulfil_page(actor: User, _target: Any) -> bool:
    """Has the fulfilment (pickup) page: a secretary somewhere."""
    return bool(grant_areas(actor, [Role.SECRETARY]))
