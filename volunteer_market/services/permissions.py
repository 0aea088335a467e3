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
    """Return True if ``actor`` may perform ``action`` on ``target``."""
    if actor is None or not getattr(actor, "is_active", False):
        return False
    try:
        check = _RULES[action]
    except KeyError:
        raise LookupError(f"no policy rule for action {action!r}") from None
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
    return _staff_over(actor, user, [Role.SECRETARY, Role.GRID_WORKER, Role.OFFICER])


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
