"""Rules of appeals (申诉): who sees an appeal, who decides it.

Filing is checked by the appeals service against the subject (a participant of the
rated delivery, the resident of a proxy rating, the member of a points award). The
officers whose grant covers the community decide -- the street above it, or the
district -- and the no-self-dealing guard refuses every party to the appeal: the
appellant, the member concerned, the delivery's participants and recorder, and the
secretary who settled it (:func:`appeal_parties`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import Appeal, Area, Role, Settlement, User
from .core import grant_areas, holds, is_admin, rule
from .projects import in_community
from .self_dealing import delivery_parties, resolver


@resolver(Appeal)
def appeal_parties(appeal: Appeal) -> set[int]:
    """The appellant, the member concerned, the delivery's participants and recorder,
    and the secretary who settled the delivery."""
    out = {appeal.appellant_id}
    if appeal.member_id is not None:
        out.add(appeal.member_id)
    if appeal.delivery_id is not None:
        out |= delivery_parties(appeal.delivery_id)
        settled_by = db.session.execute(
            sa.select(Settlement.settled_by_id).where(Settlement.delivery_id == appeal.delivery_id)
        ).scalar_one_or_none()
        if settled_by is not None:
            out.add(settled_by)
    return out


def _officer_over(actor: User, community_id: int) -> bool:
    area = db.session.get(Area, community_id)
    return area is not None and holds(actor, Role.OFFICER, area)


@rule("appeal.view")
def _appeal_view(actor: User, appeal: Appeal) -> bool:
    """The appellant, the member concerned, the community's secretary, officers above
    it, the admin."""
    if actor.id in (appeal.appellant_id, appeal.member_id) or is_admin(actor):
        return True
    return in_community(actor, Role.SECRETARY, appeal.community_id) or _officer_over(
        actor, appeal.community_id
    )


@rule("appeal.decide")
def _appeal_decide(actor: User, appeal: Appeal) -> bool:
    """An officer whose grant covers the community (never a party: the guard)."""
    return _officer_over(actor, appeal.community_id)


@rule("appeal.queue")
def _appeal_queue(actor: User, _target: Any) -> bool:
    """Has an appeals queue: an officer or a secretary somewhere."""
    return bool(grant_areas(actor, [Role.OFFICER, Role.SECRETARY]))
