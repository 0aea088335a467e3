"""Rules of the annual report and the annual evaluation (年度考核, 公示).

The report: an officer over the area (subtree), the secretary of the community, admin.
"""

from __future__ import annotations

from ...models import Area, AreaKind, Role, User
from .core import grant_areas, holds, is_admin, rule


@rule("reports.annual")
def _reports_annual(actor: User, area: Area) -> bool:
    """Annual report of an area: admin, an officer over it, or (a community or one of
    its grids) the community's secretary."""
    if is_admin(actor) or holds(actor, Role.OFFICER, area):
        return True
    return area.kind in (AreaKind.COMMUNITY, AreaKind.GRID) and holds(actor, Role.SECRETARY, area)


@rule("reports.annual_page")
def _reports_annual_page(actor: User, _target: object = None) -> bool:
    """The report page (navigation): anyone who may see some area's report."""
    return is_admin(actor) or bool(grant_areas(actor, [Role.OFFICER, Role.SECRETARY]))
