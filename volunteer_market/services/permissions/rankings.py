"""Rules of rankings and their exposure settings.

Rankings are public to every signed-in user (subject to the area's exposure setting);
secretaries and officers over an area always see its full list.
"""

from __future__ import annotations

from ...models import Area, AreaKind, Role, User
from .core import (
    holds,
    is_admin,
    rule,
)


@rule("rankings.view")
def _rankings_view(actor: User, _area: Area | None) -> bool:
    return True


@rule("rankings.full_list")
def _rankings_full_list(actor: User, area: Area) -> bool:
    """The exposure setting does not apply: admin, or secretary/officer over the area."""
    return is_admin(actor) or holds(actor, [Role.SECRETARY, Role.OFFICER], area)


@rule("rankings.teams")
def _rankings_teams(actor: User, area: Area) -> bool:
    """Team rankings and community tables: officers over the area (street, district),
    the secretary for their community (and its grids), admin."""
    return is_admin(actor) or holds(actor, [Role.SECRETARY, Role.OFFICER], area)


@rule("rankings.communities")
def _rankings_communities(actor: User, area: Area) -> bool:
    return _rankings_teams(actor, area)


@rule("rankings.configure")
def _rankings_configure(actor: User, area: Area) -> bool:
    """Exposure setting: the community's secretary (on the community), an officer over
    the area, admin."""
    if is_admin(actor) or holds(actor, Role.OFFICER, area):
        return True
    return area.kind == AreaKind.COMMUNITY and holds(actor, Role.SECRETARY, area)
