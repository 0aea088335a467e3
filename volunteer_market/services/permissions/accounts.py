"""Rules of areas, users, role grants and the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...models import Area, Role, User
from .core import (
    SECRETARY_GRANTABLE,
    communities_of,
    grant_areas,
    holds,
    is_admin,
    rule,
    user_communities,
)


@rule("area.create")
def _area_create(actor: User, _target: Any) -> bool:
    return is_admin(actor)


@rule("area.view")
def _area_view(actor: User, _target: Any) -> bool:
    return True  # the area tree is public to every signed-in user


@rule("user.create")
def _user_create(actor: User, _target: Any) -> bool:
    return is_admin(actor) or bool(grant_areas(actor, [Role.SECRETARY]))


@rule("user.reset_password")
def _user_reset_password(actor: User, user: User) -> bool:
    """An admin, or the secretary of a community where ``user`` holds a role, when every
    role ``user`` holds is one a secretary grants there (never another secretary, an
    officer or an admin; never oneself: one's own password is changed, not reset)."""
    if actor.id == user.id:
        return False
    if is_admin(actor):
        return True
    if not user.grants:
        return False
    return all(
        g.role in SECRETARY_GRANTABLE
        and g.area is not None
        and holds(actor, Role.SECRETARY, g.area)
        for g in user.grants
    )


def staff_over(actor: User, user: User, roles: Iterable[Role]) -> bool:
    """True if ``actor`` holds ``roles`` over an area where ``user`` holds a grant."""
    role_list = list(roles)
    return any(g.area is not None and holds(actor, role_list, g.area) for g in user.grants)


@rule("user.view")
def _user_view(actor: User, user: User) -> bool:
    if actor.id == user.id or is_admin(actor):
        return True
    if user.created_by_id == actor.id:
        return True
    if staff_over(actor, user, [Role.SECRETARY, Role.OFFICER]):
        return True
    # Grid workers serve their whole community (as for personal data below).
    return bool(communities_of(actor, [Role.GRID_WORKER]) & user_communities(user))


@rule("user.view_personal")
def _user_view_personal(actor: User, user: User) -> bool:
    """Phones, addresses, household tags: self, and the secretary or grid workers of a
    community where the user holds a role (DESIGN.md "Privacy"); not the admin, whose
    work (areas, accounts, roles) needs none of it. Whoever created a user who holds no
    role yet sees what they typed."""
    if actor.id == user.id:
        return True
    if user.created_by_id == actor.id and not user.grants:
        return True
    mine = communities_of(actor, [Role.SECRETARY, Role.GRID_WORKER])
    return bool(mine & user_communities(user))


@dataclass(frozen=True)
class GrantTarget:
    """What a grant would be: ``role`` on ``area`` (None for admin), held by ``user``
    (None: any user, as when a page asks whether to offer the form)."""

    role: Role
    area: Area | None
    user: User | None = None


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
