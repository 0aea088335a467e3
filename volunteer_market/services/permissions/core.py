"""The policy's machinery: the rule registry, ``may``/``require``, and the grant helpers
every rule module uses (a grant on an area covers its subtree: materialized paths, so a
coverage test is a string prefix test and never walks the tree)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ...models import Area, AreaKind, Role, User
from ..errors import Forbidden

Rule = Callable[[User, Any], bool]
_RULES: dict[str, Rule] = {}
#: Checks every ``may`` runs before the action's rule: ``(actor, action, target)`` ->
#: False to refuse. The one registered is the no-self-dealing rule
#: (``self_dealing.py``): nobody acts on points for an object he benefits from.
Guard = Callable[[User, str, Any], bool]
_GUARDS: list[Guard] = []

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


def guard(fn: Guard) -> Guard:
    """Register ``fn`` as a check that every action passes before its own rule."""
    _GUARDS.append(fn)
    return fn


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
    if not all(g(actor, action, target) for g in _GUARDS):
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
