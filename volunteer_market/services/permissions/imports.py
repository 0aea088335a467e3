"""Rules of onboarding: bulk imports and self-registrations (DESIGN.md "Onboarding")."""

from __future__ import annotations

from typing import Any

from ...extensions import db
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


def _registration_community(registration: Any) -> Area | None:
    return db.session.get(Area, registration.community_id) if registration is not None else None


@rule("registration.view")
def _registration_view(actor: User, registration: Any) -> bool:
    """A secretary of the registration's community (phones are personal data)."""
    return holds(actor, Role.SECRETARY, _registration_community(registration))


@rule("registration.decide")
def _registration_decide(actor: User, registration: Any) -> bool:
    """A secretary of that community (the admin takes no part in community business)."""
    return holds(actor, Role.SECRETARY, _registration_community(registration))


@rule("registration.queue")
def _registration_queue(actor: User, _target: Any) -> bool:
    """May open the queue at all: a secretary somewhere."""
    return any(g.role == Role.SECRETARY for g in actor.grants)
