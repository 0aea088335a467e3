"""Rules of each person's home (工作台, DESIGN.md "Each person's home"): which parts of
the home page a person has. Each part shows only the objects of the areas where the
person holds that role (``services/home.py`` scopes every count by these grants)."""

from __future__ import annotations

from typing import Any

from ...models import Role, User
from .core import grant_areas, is_admin, rule


def _holds_any(actor: User, role: Role) -> bool:
    return bool(grant_areas(actor, [role]))


@rule("home.secretary")
def _home_secretary(actor: User, _target: Any = None) -> bool:
    """The secretary's to-do list: a secretary of some community."""
    return _holds_any(actor, Role.SECRETARY)


@rule("home.officer")
def _home_officer(actor: User, _target: Any = None) -> bool:
    """The officer's subtree summary: an officer of some street or district."""
    return _holds_any(actor, Role.OFFICER)


@rule("home.grid")
def _home_grid(actor: User, _target: Any = None) -> bool:
    """The grid worker's residents, open needs and proxy ratings."""
    return _holds_any(actor, Role.GRID_WORKER)


@rule("home.member")
def _home_member(actor: User, _target: Any = None) -> bool:
    """The member's projects, open needs and points."""
    return _holds_any(actor, Role.MEMBER)


@rule("home.resident")
def _home_resident(actor: User, _target: Any = None) -> bool:
    """The resident's ratings to give, needs and menu of services."""
    return _holds_any(actor, Role.RESIDENT)


@rule("home.admin")
def _home_admin(actor: User, _target: Any = None) -> bool:
    """The admin's figures (users, areas)."""
    return is_admin(actor)
