"""No self-dealing: nobody acts on points for an object in which he is the beneficiary.

The one rule behind every point-moving action (DESIGN.md "People and roles"; issue 15):
whatever other roles a user holds, he never grants a role to himself, and never
adjusts, reverses, settles, fulfils, reviews, rates or issues rating slips for, or
decides an appeal on, an object whose points would reach him; nor moderates the comment
of, or calls back, a rating of a delivery he served in or a rating he gave or entered. It runs as a guard of
:func:`core.may` before the action's own rule, so no rule can forget it.

The beneficiaries of each kind of target (:func:`beneficiaries_of`):

* a delivery, or a rating of it -- its participants and its recorder;
* an adjustment ``AdjustTarget(member, community)`` or a ledger transaction -- the member;
* a redemption -- the member who redeems;
* a project -- its owner and active team members (their deliveries earn points);
* a role grant ``GrantTarget(role, area, user)`` -- the user who would hold it;
* an appeal -- the appellant and the member whose points it concerns (``appeal_parties``);
* a rating under oversight ``RatingOversight(rating)`` (hiding its comment, calling it
  back) -- the delivery's participants and recorder, the resident and who entered it
  (``moderation.oversight_parties``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import (
    Delivery,
    LedgerTransaction,
    Project,
    Rating,
    Redemption,
    TeamMembership,
    TeamStatus,
    User,
)
from ..delivery_people import people_of
from .accounts import GrantTarget
from .core import guard

#: The actions the rule guards (each moves points, a role or a decision about them).
GUARDED_ACTIONS: frozenset[str] = frozenset(
    {
        "role.grant",
        "ledger.adjust",
        "ledger.reverse",
        "settlement.settle",
        "redemption.handle",
        "project.review",
        "rating.rate",
        "rating.proxy",
        "rating.change",
        "delivery.slips",
        "appeal.decide",
        "rating.moderate",
        "callback.record",
    }
)

#: Extra resolvers registered by features whose targets live in their own rule module
#: (appeals): ``type -> (target -> user ids)``.
_RESOLVERS: dict[type, Callable[[Any], set[int]]] = {}


def resolver(kind: type) -> Callable[[Callable[[Any], set[int]]], Callable[[Any], set[int]]]:
    """Register how to find the beneficiaries of targets of type ``kind``."""

    def register(fn: Callable[[Any], set[int]]) -> Callable[[Any], set[int]]:
        _RESOLVERS[kind] = fn
        return fn

    return register


def delivery_parties(delivery_id: int) -> set[int]:
    """Return the ids of the delivery's participants and its recorder."""
    return people_of(delivery_id).parties


def project_parties(project: Project) -> set[int]:
    """Return the owner and the active team members of a project."""
    team = db.session.execute(
        sa.select(TeamMembership.user_id).where(
            TeamMembership.project_id == project.id,
            TeamMembership.status == TeamStatus.ACTIVE,
        )
    ).scalars()
    return {project.owner_id, *team}


def beneficiaries_of(target: Any) -> set[int]:
    """Return the ids of the users whose points (or role) acting on ``target`` moves."""
    if target is None:
        return set()
    for kind, fn in _RESOLVERS.items():
        if isinstance(target, kind):
            return fn(target)
    if isinstance(target, Delivery):
        return delivery_parties(target.id)
    if isinstance(target, Rating):
        return delivery_parties(target.delivery_id)
    if isinstance(target, LedgerTransaction):
        return {target.member_id} if target.member_id is not None else set()
    if isinstance(target, Redemption):
        return {target.member_id}
    if isinstance(target, Project):
        return project_parties(target)
    if isinstance(target, GrantTarget):
        return {target.user.id} if target.user is not None else set()
    member = getattr(target, "member", None)  # ledger.AdjustTarget (services/ledger)
    if isinstance(member, User):
        return {member.id}
    return set()


@guard
def no_self_dealing(actor: User, action: str, target: Any) -> bool:
    """Refuse a guarded action on a target whose beneficiaries include the actor."""
    if action not in GUARDED_ACTIONS:
        return True
    return actor.id not in beneficiaries_of(target)
