"""Rules of integrity signals: the community's secretary, officers whose grant covers it."""

from __future__ import annotations

from ...models import Area, AreaKind, Role, User
from .core import grant_areas, holds, rule
from .projects import in_community


@rule("integrity.view")
def _integrity_view(actor: User, community: Area | None) -> bool:
    """A community's signals: its secretary, an officer over it. ``None``: has a page."""
    if community is None:
        return bool(grant_areas(actor, [Role.SECRETARY, Role.OFFICER]))
    if community.kind != AreaKind.COMMUNITY:
        return False
    return in_community(actor, Role.SECRETARY, community.id) or holds(
        actor, Role.OFFICER, community
    )
