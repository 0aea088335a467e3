"""Rules of the annual report and the annual evaluation (年度考核, 公示).

The report: an officer over the area (subtree), the secretary of the community, admin.
"""

from __future__ import annotations

from ...extensions import db
from ...models import Area, AreaKind, Evaluation, EvaluationStatus, Role, User
from .core import communities_of, grant_areas, holds, is_admin, rule


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


def _manages(actor: User, community: Area) -> bool:
    return community.kind == AreaKind.COMMUNITY and holds(actor, Role.SECRETARY, community)


@rule("evaluation.manage")
def _evaluation_manage(actor: User, community: Area) -> bool:
    """Close, publish, answer objections, finalize: the community's secretary."""
    return _manages(actor, community)


def _community_of(evaluation: Evaluation) -> Area | None:
    return db.session.get(Area, evaluation.community_id)


@rule("evaluation.view_full")
def _evaluation_view_full(actor: User, evaluation: Evaluation) -> bool:
    """The whole record (usernames, home units, objections): the secretary, an officer
    over the community, admin."""
    community = _community_of(evaluation)
    if community is None:
        return False
    return is_admin(actor) or holds(actor, [Role.SECRETARY, Role.OFFICER], community)


@rule("evaluation.view")
def _evaluation_view(actor: User, evaluation: Evaluation) -> bool:
    """The list: as ``view_full``; members and residents of the community once it is
    published (names and figures only)."""
    if _evaluation_view_full(actor, evaluation):
        return True
    return evaluation.status != EvaluationStatus.CLOSED and _evaluation_object(actor, evaluation)


@rule("evaluation.object")
def _evaluation_object(actor: User, evaluation: Evaluation) -> bool:
    """File an objection: a member or resident of the community."""
    return evaluation.community_id in communities_of(actor, [Role.MEMBER, Role.RESIDENT])


@rule("evaluation.list")
def _evaluation_list(actor: User, area: Area) -> bool:
    """The evaluations of an area (the lifecycle page): admin, an officer over it (read
    only), the community's secretary (who runs it). Not a grid: evaluations are per
    community."""
    if area.kind == AreaKind.GRID:
        return False
    return is_admin(actor) or holds(actor, Role.OFFICER, area) or _manages(actor, area)


@rule("evaluation.list_page")
def _evaluation_list_page(actor: User, _target: object = None) -> bool:
    """The evaluations page (navigation): staff who may list some area's evaluations,
    members and residents (their communities' published lists)."""
    return is_admin(actor) or bool(
        grant_areas(actor, [Role.OFFICER, Role.SECRETARY, Role.MEMBER, Role.RESIDENT])
    )
