"""The policy module: the one place that answers "may this user do this to that?".

Every check in views, API handlers and services goes through :func:`may` or
:func:`require`. A rule is a function ``(actor, target) -> bool`` registered for an
action name; it decides from the actor's active role grants and the area tree:
a grant on an area covers that area's whole subtree (materialized paths, so a
coverage test is a string prefix test and never walks the tree).

Roles (DESIGN.md): member, resident, grid_worker, secretary, officer on an area;
admin is global. The admin manages areas, users, grants and policies but takes
no part in community business (approving, settling, redeeming).

Sections below are grouped by aggregate; later features add their rules here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..models import Area, AreaKind, Role, User
from .errors import Forbidden

Rule = Callable[[User, Any], bool]
_RULES: dict[str, Rule] = {}

#: Which area kinds each role may be granted on.
GRANTABLE_KINDS: dict[Role, frozenset[AreaKind]] = {
    Role.MEMBER: frozenset({AreaKind.COMMUNITY, AreaKind.GRID}),
    Role.RESIDENT: frozenset({AreaKind.COMMUNITY, AreaKind.GRID}),
    Role.GRID_WORKER: frozenset({AreaKind.GRID, AreaKind.COMMUNITY}),
    Role.SECRETARY: frozenset({AreaKind.COMMUNITY}),
    Role.OFFICER: frozenset({AreaKind.STREET, AreaKind.DISTRICT}),
    Role.ADMIN: frozenset(),
}

#: Roles a secretary may grant inside their own community.
SECRETARY_GRANTABLE: frozenset[Role] = frozenset({Role.MEMBER, Role.RESIDENT, Role.GRID_WORKER})


def rule(action: str) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the rule for ``action``."""

    def register(fn: Rule) -> Rule:
        if action in _RULES:
            raise RuntimeError(f"duplicate rule for {action}")
        _RULES[action] = fn
        return fn

    return register


def actions() -> list[str]:
    """Return every action name the policy knows (for tests and docs)."""
    return sorted(_RULES)


def may(actor: User | None, action: str, target: Any = None) -> bool:
    """Return True if ``actor`` may perform ``action`` on ``target``.

    :raises LookupError: no rule for ``action`` (also for anonymous or inactive actors,
        so a misspelt action never silently answers False).
    """
    try:
        check = _RULES[action]
    except KeyError:
        raise LookupError(f"no policy rule for action {action!r}") from None
    if actor is None or not getattr(actor, "is_active", False):
        return False
    return bool(check(actor, target))


def require(actor: User | None, action: str, target: Any = None) -> None:
    """Raise :class:`Forbidden` unless ``actor`` may perform ``action`` on ``target``."""
    if not may(actor, action, target):
        raise Forbidden("You are not allowed to do this.", action=action)


# --- grant helpers ------------------------------------------------------------


def is_admin(actor: User) -> bool:
    """Return True if ``actor`` holds the global admin role."""
    return any(g.role == Role.ADMIN for g in actor.grants)


def grant_areas(actor: User, roles: Iterable[Role]) -> list[Area]:
    """Return the areas on which ``actor`` holds any of ``roles``."""
    wanted = set(roles)
    return [g.area for g in actor.grants if g.role in wanted and g.area is not None]


def holds(actor: User, roles: Role | Iterable[Role], area: Area | None) -> bool:
    """Return True if ``actor`` holds one of ``roles`` on ``area`` or an ancestor of it."""
    if area is None:
        return False
    role_set = {roles} if isinstance(roles, Role) else set(roles)
    return any(
        g.role in role_set and g.area is not None and area.path.startswith(g.area.path)
        for g in actor.grants
    )


def community_id_of(area: Area) -> int | None:
    """Return the id of the community that ``area`` is or lies in (None above communities)."""
    ids = area.ancestor_ids()
    return ids[2] if len(ids) >= 3 else None


def communities_of(actor: User, roles: Iterable[Role]) -> set[int]:
    """Return the ids of the communities where ``actor`` holds one of ``roles``."""
    out = set()
    for area in grant_areas(actor, roles):
        cid = community_id_of(area)
        if cid is not None:
            out.add(cid)
    return out


def user_communities(user: User) -> set[int]:
    """Return the communities in which ``user`` holds any grant."""
    return communities_of(user, [r for r in Role if r != Role.ADMIN])


# --- areas ----------------------------------------------------------------------


@rule("area.create")
def _area_create(actor: User, _target: Any) -> bool:
    return is_admin(actor)


@rule("area.view")
def _area_view(actor: User, _target: Any) -> bool:
    return True  # the area tree is public to every signed-in user


# --- users and grants -----------------------------------------------------------


@rule("user.create")
def _user_create(actor: User, _target: Any) -> bool:
    return is_admin(actor) or bool(grant_areas(actor, [Role.SECRETARY]))


def _staff_over(actor: User, user: User, roles: Iterable[Role]) -> bool:
    """True if ``actor`` holds ``roles`` over an area where ``user`` holds a grant."""
    role_list = list(roles)
    return any(g.area is not None and holds(actor, role_list, g.area) for g in user.grants)


@rule("user.view")
def _user_view(actor: User, user: User) -> bool:
    if actor.id == user.id or is_admin(actor):
        return True
    if user.created_by_id == actor.id:
        return True
    if _staff_over(actor, user, [Role.SECRETARY, Role.OFFICER]):
        return True
    # Grid workers serve their whole community (as for personal data below).
    return bool(communities_of(actor, [Role.GRID_WORKER]) & user_communities(user))


@rule("user.view_personal")
def _user_view_personal(actor: User, user: User) -> bool:
    """Phones, addresses, household tags: self, admin, and the secretary or grid
    workers of a community where the user holds a role (DESIGN.md "Privacy")."""
    if actor.id == user.id or is_admin(actor):
        return True
    if user.created_by_id == actor.id and not user.grants:
        return True
    mine = communities_of(actor, [Role.SECRETARY, Role.GRID_WORKER])
    return bool(mine & user_communities(user))


@dataclass(frozen=True)
class GrantTarget:
    """What a grant would be: ``role`` on ``area`` (None for admin)."""

    role: Role
    area: Area | None


@rule("role.grant")
def _role_grant(actor: User, target: GrantTarget) -> bool:
    if is_admin(actor):
        return True
    return (
        target.role in SECRETARY_GRANTABLE
        and target.area is not None
        and holds(actor, Role.SECRETARY, target.area)
    )


@rule("role.revoke")
def _role_revoke(actor: User, target: GrantTarget) -> bool:
    return _role_grant(actor, target)


@rule("audit.view")
def _audit_view(actor: User, area: Area | None) -> bool:
    if is_admin(actor):
        return True
    return area is not None and holds(actor, [Role.SECRETARY, Role.OFFICER], area)


# --- projects, teams, needs, deliveries --------------------------------
# "Of the community" means a grant on the community or one of its grids
# (communities_of); officers read their subtree; the admin reads everything but
# takes no part in community business.

import sqlalchemy as _sa  # noqa: E402

from ..extensions import db as _db  # noqa: E402
from ..models import (  # noqa: E402
    Delivery,
    DeliveryBeneficiary,
    DeliveryParticipant,
    Need,
    Project,
    ProjectStatus,
    TeamMembership,
    TeamStatus,
)

#: Project states every signed-in user may see.
PROJECT_PUBLIC_STATUSES = frozenset({ProjectStatus.APPROVED, ProjectStatus.COMPLETED})
#: Project states members of the project's community may also see (in review).
PROJECT_COMMUNITY_STATUSES = frozenset({ProjectStatus.SUBMITTED, ProjectStatus.CHANGES_REQUESTED})


def in_community(actor: User, roles: Role | Iterable[Role], community_id: int) -> bool:
    """Return True if ``actor`` holds one of ``roles`` in community ``community_id``."""
    role_list = [roles] if isinstance(roles, Role) else list(roles)
    return community_id in communities_of(actor, role_list)


def reads_community(actor: User, community_id: int) -> bool:
    """Admin, the community's secretary and grid workers, officers above it."""
    if is_admin(actor) or in_community(actor, [Role.SECRETARY, Role.GRID_WORKER], community_id):
        return True
    area = _db.session.get(Area, community_id)
    return area is not None and holds(actor, Role.OFFICER, area)


def team_status(project_id: int, user_id: int) -> TeamStatus | None:
    """Return ``user_id``'s membership status on the project's team, if any."""
    return _db.session.execute(
        _sa.select(TeamMembership.status).where(
            TeamMembership.project_id == project_id, TeamMembership.user_id == user_id
        )
    ).scalar_one_or_none()


def on_team(actor: User, project: Project) -> bool:
    """Return True for the owner (still a member there) and active team members."""
    if actor.id == project.owner_id:
        return in_community(actor, Role.MEMBER, project.community_id)
    return team_status(project.id, actor.id) == TeamStatus.ACTIVE


@rule("project.create")
def _project_create(actor: User, community: Area) -> bool:
    return community.kind == AreaKind.COMMUNITY and in_community(actor, Role.MEMBER, community.id)


@rule("project.similar")
def _project_similar(actor: User, community: Area) -> bool:
    return in_community(actor, [Role.MEMBER, Role.SECRETARY], community.id) or reads_community(
        actor, community.id
    )


@rule("project.view")
def _project_view(actor: User, project: Project) -> bool:
    if project.status in PROJECT_PUBLIC_STATUSES or actor.id == project.owner_id:
        return True
    if reads_community(actor, project.community_id):
        return True
    if project.status in PROJECT_COMMUNITY_STATUSES and in_community(
        actor, Role.MEMBER, project.community_id
    ):
        return True
    return team_status(project.id, actor.id) is not None


@rule("project.own")
def _project_own(actor: User, project: Project) -> bool:
    """The owner, while still a member of the project's community."""
    return actor.id == project.owner_id and in_community(actor, Role.MEMBER, project.community_id)


@rule("project.review")
def _project_review(actor: User, project: Project) -> bool:
    """The community's secretary, never for a project they lead themself."""
    return actor.id != project.owner_id and in_community(
        actor, Role.SECRETARY, project.community_id
    )


@rule("project.history")
def _project_history(actor: User, project: Project) -> bool:
    """The audited lifecycle history (who reviewed, with their comments): the owner and
    the community's staff, as the project page shows it; not every viewer of a public
    project."""
    return (
        may(actor, "project.own", project)
        or may(actor, "project.review", project)
        or reads_community(actor, project.community_id)
    )


@rule("team.join")
def _team_join(actor: User, project: Project) -> bool:
    return actor.id != project.owner_id and in_community(actor, Role.MEMBER, project.community_id)


@rule("team.manage")
def _team_manage(actor: User, project: Project) -> bool:
    return _project_own(actor, project)


@rule("project.order")
def _project_order(actor: User, project: Project) -> bool:
    return in_community(actor, Role.RESIDENT, project.community_id)


@dataclass(frozen=True)
class NeedFor:
    """A need to be posted in ``community`` for ``resident``."""

    community: Area
    resident: User


@rule("need.create")
def _need_create(actor: User, target: NeedFor) -> bool:
    """A resident for themself; a grid worker of the community for one of its residents."""
    cid = target.community.id
    if target.community.kind != AreaKind.COMMUNITY or not in_community(
        target.resident, Role.RESIDENT, cid
    ):
        return False
    if actor.id == target.resident.id:
        return True
    return in_community(actor, Role.GRID_WORKER, cid)


@rule("need.view")
def _need_view(actor: User, need: Need) -> bool:
    if actor.id in (need.beneficiary_id, need.posted_by_id, need.assignee_id):
        return True
    if in_community(actor, Role.MEMBER, need.community_id) or reads_community(
        actor, need.community_id
    ):
        return True
    if need.project_id is not None:
        project = _db.session.get(Project, need.project_id)
        return project is not None and on_team(actor, project)
    return False


@rule("need.claim")
def _need_claim(actor: User, need: Need) -> bool:
    return in_community(actor, Role.MEMBER, need.community_id)


@rule("need.dispatch")
def _need_dispatch(actor: User, need: Need) -> bool:
    return in_community(actor, Role.SECRETARY, need.community_id)


@rule("need.release")
def _need_release(actor: User, need: Need) -> bool:
    """The assignee, the owner of the project it was given to, or the secretary."""
    if need.assignee_id is not None and actor.id == need.assignee_id:
        return True
    if need.project_id is not None:
        project = _db.session.get(Project, need.project_id)
        if project is not None and _project_own(actor, project):
            return True
    return in_community(actor, Role.SECRETARY, need.community_id)


@rule("need.cancel")
def _need_cancel(actor: User, need: Need) -> bool:
    if actor.id in (need.beneficiary_id, need.posted_by_id):
        return True
    return in_community(actor, Role.SECRETARY, need.community_id)


@rule("delivery.record")
def _delivery_record(actor: User, project: Project) -> bool:
    return on_team(actor, project)


@rule("delivery.view")
def _delivery_view(actor: User, delivery: Delivery) -> bool:
    if actor.id == delivery.recorded_by_id or reads_community(actor, delivery.community_id):
        return True
    project = _db.session.get(Project, delivery.project_id)
    if project is not None and (actor.id == project.owner_id or on_team(actor, project)):
        return True
    for model in (DeliveryParticipant, DeliveryBeneficiary):
        hit = _db.session.execute(
            _sa.select(model.id).where(model.delivery_id == delivery.id, model.user_id == actor.id)
        ).first()
        if hit is not None:
            return True
    return False


# --- ledger (points) -------------------------------------------------------------


@rule("ledger.view")
def _ledger_view(actor: User, member: User) -> bool:
    """A member's ledger: the member, the secretary of a community where the member
    holds a role, an officer over an area where the member holds a role."""
    if actor.id == member.id:
        return True
    if communities_of(actor, [Role.SECRETARY]) & user_communities(member):
        return True
    return _staff_over(actor, member, [Role.OFFICER])


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
    own points. ``None``: any secretary."""
    if target is None:
        return bool(grant_areas(actor, [Role.SECRETARY]))
    if actor.id == target.member.id:
        return False
    return holds(actor, Role.SECRETARY, target.community) and target.community.id in (
        communities_of(target.member, [Role.MEMBER])
    )


@rule("ledger.reverse")
def _ledger_reverse(actor: User, community: Area | None) -> bool:
    """Reverse a transaction of ``community``: its secretary."""
    return community is not None and holds(actor, Role.SECRETARY, community)


@rule("points_policy.manage")
def _points_policy_manage(actor: User, _community: Area | None) -> bool:
    return is_admin(actor)


# --- ratings and settlement ----------------------------------------------
# Ratings belong to the beneficiaries (residents) of a delivery; participants never
# rate their own delivery. Staff of the delivery's community (grid workers, the
# secretary) may enter a proxy rating for a beneficiary without a phone. Only the
# secretary and the officers above the community see who gave which score.

from ..models import Rating  # noqa: E402


def is_participant(user_id: int, delivery_id: int) -> bool:
    """Return True if ``user_id`` served in the delivery."""
    return (
        _db.session.execute(
            _sa.select(DeliveryParticipant.id).where(
                DeliveryParticipant.delivery_id == delivery_id,
                DeliveryParticipant.user_id == user_id,
            )
        ).first()
        is not None
    )


def is_beneficiary(user_id: int, delivery_id: int) -> bool:
    """Return True if ``user_id`` received the service of the delivery."""
    return (
        _db.session.execute(
            _sa.select(DeliveryBeneficiary.id).where(
                DeliveryBeneficiary.delivery_id == delivery_id,
                DeliveryBeneficiary.user_id == user_id,
            )
        ).first()
        is not None
    )


@rule("rating.rate")
def _rating_rate(actor: User, delivery: Delivery) -> bool:
    """Rate for oneself: a beneficiary of the delivery, never a participant."""
    return is_beneficiary(actor.id, delivery.id) and not is_participant(actor.id, delivery.id)


@rule("rating.proxy")
def _rating_proxy(actor: User, delivery: Delivery) -> bool:
    """Enter a rating for a beneficiary: a grid worker or the secretary of the
    delivery's community, who did not serve in it."""
    return in_community(
        actor, [Role.GRID_WORKER, Role.SECRETARY], delivery.community_id
    ) and not is_participant(actor.id, delivery.id)


@rule("rating.change")
def _rating_change(actor: User, rating: Rating) -> bool:
    """The beneficiary the rating belongs to, or staff who may enter proxy ratings."""
    delivery = _db.session.get(Delivery, rating.delivery_id)
    if delivery is None or is_participant(actor.id, delivery.id):
        return False
    return actor.id == rating.beneficiary_id or _rating_proxy(actor, delivery)


@rule("rating.reply")
def _rating_reply(actor: User, rating: Rating) -> bool:
    """A participant of the rated delivery."""
    return is_participant(actor.id, rating.delivery_id)


@rule("rating.identities")
def _rating_identities(actor: User, delivery: Delivery) -> bool:
    """See who gave which score: the community's secretary, officers above it."""
    if in_community(actor, Role.SECRETARY, delivery.community_id):
        return True
    area = _db.session.get(Area, delivery.community_id)
    return area is not None and holds(actor, Role.OFFICER, area)


@rule("rating.inbox")
def _rating_inbox(actor: User, _target: Any) -> bool:
    """Has a ratings page: members (ratings received) and residents (to rate)."""
    return any(g.role in (Role.MEMBER, Role.RESIDENT) for g in actor.grants)


@rule("settlement.settle")
def _settlement_settle(actor: User, delivery: Delivery) -> bool:
    """The secretary of the delivery's community, never for a delivery they served in."""
    return in_community(actor, Role.SECRETARY, delivery.community_id) and not is_participant(
        actor.id, delivery.id
    )


@rule("settlement.queue")
def _settlement_queue(actor: User, _target: Any) -> bool:
    """Has a settlement queue: a secretary somewhere."""
    return bool(grant_areas(actor, [Role.SECRETARY]))


# --- rankings ----------------------------------------------------------
# Rankings are public to every signed-in user (subject to the area's exposure
# setting); secretaries and officers over an area always see its full list.


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


# --- rewards and redemption ----------------------------------------------
# A reward is offered to its area's subtree. Secretaries manage rewards of their own
# community (or its grids), officers those in their subtree ("rewards at their level").
# A redemption belongs to the member's community inside the reward's scope: that
# community's secretary hands it over (never their own) or rejects it.

from ..models import Redemption, Reward  # noqa: E402


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
    area = _db.session.get(Area, redemption.community_id)
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


@rule("project.propose")
def _project_propose(actor: User, _target: Any) -> bool:
    """Has a community to propose in (shows "my projects" / "propose")."""
    return bool(communities_of(actor, [Role.MEMBER]))


@rule("project.review_queue")
def _project_review_queue(actor: User, _target: Any) -> bool:
    return bool(communities_of(actor, [Role.SECRETARY]))
