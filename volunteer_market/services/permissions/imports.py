"""Rules of bulk imports and self-registrations (DESIGN.md "Onboarding")."""

from __future__ import annotations

from typing import Any

from ...models import Area, Role, User
from .core import holds, is_admin, rule


@rule("import.create")
def _import_create(actor: User, community: Area | None) -> bool:
    """An admin into any community, a secretary into their own."""
    if is_admin(actor):
        return True
    return community is not None and holds(actor, Role.SECRETARY, community)


@rule("import.start")
def _import_start(actor: User, _target: Any) -> bool:
    """May open the import page at all (an admin, or a secretary somewhere)."""
    return is_admin(actor) or any(g.role == Role.SECRETARY for g in actor.grants)


@rule("import.view")
def _import_view(actor: User, job: Any) -> bool:
    """Only the one who started it."""
    return job is not None and job.created_by_id == actor.id
