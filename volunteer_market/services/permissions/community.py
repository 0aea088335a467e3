"""Rules of running a community: reading the audit log, the points policy and the
community dashboard (DESIGN.md "Running a community").

The community's secretary (on the community) and officers over it run it; the admin
reads every audit entry and manages policy versions (the default policy and any
community's, DESIGN.md roles) but takes no part in a community's business, so he does
not read its dashboard.
"""

from __future__ import annotations

from ...models import Area, AreaKind, Role, User
from .core import grant_areas, holds, is_admin, rule, user_communities
from .projects import in_community


@rule("audit.page")
def _audit_page(actor: User, _target: None = None) -> bool:
    """May read some part of the audit log (has the page): a secretary, an officer, the
    admin. Which entries: ``audit.view`` of their areas (``accounts.py``)."""
    return is_admin(actor) or bool(grant_areas(actor, [Role.SECRETARY, Role.OFFICER]))


def _runs(actor: User, community: Area) -> bool:
    """The community's secretary or an officer over it."""
    return community.kind == AreaKind.COMMUNITY and (
        in_community(actor, Role.SECRETARY, community.id) or holds(actor, Role.OFFICER, community)
    )


@rule("points_policy.view")
def _points_policy_view(actor: User, community: Area | None) -> bool:
    """A community's policy: anyone holding a role in it, those who run it, the admin.
    ``None`` (the default policy): the admin."""
    if is_admin(actor):
        return True
    if community is None or community.kind != AreaKind.COMMUNITY:
        return False
    return community.id in user_communities(actor) or _runs(actor, community)


@rule("points_policy.manage")
def _points_policy_manage(actor: User, community: Area | None) -> bool:
    """A new version of a community's policy: its secretary, an officer over it, the
    admin. The default policy (``None``): the admin."""
    if is_admin(actor):
        return True
    return community is not None and _runs(actor, community)


@rule("community.settings_page")
def _settings_page(actor: User, _target: None = None) -> bool:
    """Has a settings page: runs some community (a secretary, an officer) or the admin."""
    return is_admin(actor) or bool(grant_areas(actor, [Role.SECRETARY, Role.OFFICER]))


@rule("dashboard.view")
def _dashboard_view(actor: User, community: Area | None) -> bool:
    """A community's dashboard: its secretary, an officer over it. ``None``: has one."""
    if community is None:
        return bool(grant_areas(actor, [Role.SECRETARY, Role.OFFICER]))
    return _runs(actor, community)
