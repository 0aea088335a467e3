"""Rules of the points ledger: reading, adjusting, reversing; the points policy."""

from __future__ import annotations

from typing import Any

from ...extensions import db
from ...models import Area, LedgerTransaction, Role, User
from .accounts import staff_over
from .core import (
    communities_of,
    grant_areas,
    holds,
    rule,
    user_communities,
)


@rule("ledger.view")
def _ledger_view(actor: User, member: User) -> bool:
    """A member's ledger: the member, the secretary of a community where the member
    holds a role, an officer over an area where the member holds a role."""
    if actor.id == member.id:
        return True
    if communities_of(actor, [Role.SECRETARY]) & user_communities(member):
        return True
    return staff_over(actor, member, [Role.OFFICER])


@rule("ledger.wallet")
def _ledger_wallet(actor: User, _target: Any) -> bool:
    """Has a points wallet page: holds a member role somewhere."""
    return any(g.role == Role.MEMBER for g in actor.grants)


@rule("ledger.members")
def _ledger_members(actor: User, _target: Any) -> bool:
    """May list the points of the members they oversee: a secretary or an officer."""
    return bool(grant_areas(actor, [Role.SECRETARY, Role.OFFICER]))


@rule("ledger.adjust")
def _ledger_adjust(actor: User, target: Any) -> bool:
    """Target ``AdjustTarget(member, community)`` (services/ledger/corrections.py): the
    secretary of that community, where the member holds a member role, never for their
    own points (also refused by the no-self-dealing guard). ``None``: any secretary."""
    if target is None:
        return bool(grant_areas(actor, [Role.SECRETARY]))
    if actor.id == target.member.id:
        return False
    return holds(actor, Role.SECRETARY, target.community) and target.community.id in (
        communities_of(target.member, [Role.MEMBER])
    )


@rule("ledger.reverse")
def _ledger_reverse(actor: User, target: Area | LedgerTransaction | None) -> bool:
    """Reverse a transaction of a community: its secretary. Given the transaction
    itself, the no-self-dealing guard also refuses the member it concerns."""
    if isinstance(target, LedgerTransaction):
        target = db.session.get(Area, target.community_id) if target.community_id else None
    return target is not None and holds(actor, Role.SECRETARY, target)
