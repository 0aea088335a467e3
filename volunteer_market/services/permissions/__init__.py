"""The policy module: the one place that answers "may this user do this to that?".

Every check in views, API handlers and services goes through :func:`may` or
:func:`require`. A rule is a function ``(actor, target) -> bool`` registered for an
action name; it decides from the actor's active role grants and the area tree:
a grant on an area covers that area's whole subtree (materialized paths, so a
coverage test is a string prefix test and never walks the tree).

Roles (DESIGN.md): member, resident, grid_worker, secretary, officer on an area;
admin is global. The admin manages areas, users, grants and policies but takes
no part in community business (approving, settling, redeeming).

The package holds one room per concept: ``core`` (the registry, ``may``/``require``, the
grant helpers), a rule module per aggregate (``accounts``, ``appeals``, ``evaluations``,
``community`` (audit log, points policy, dashboard), ``home`` (the parts of each
person's home), ``imports``, ``integrity``,
``moderation``, ``notifications``, ``projects``, ``ledger``, ``ratings``, ``rankings``,
``rewards``, ``sessions``) and ``self_dealing``, the one guard every point-moving action passes (nobody
acts for an object he benefits from). A new feature adds its rules in a module of its own
and imports it below, so every rule is
registered when the package is imported.
"""

from __future__ import annotations

from . import (  # noqa: F401  (register)
    accounts,
    appeals,
    community,
    evaluations,
    home,
    imports,
    integrity,
    ledger,
    moderation,
    notifications,
    projects,
    rankings,
    ratings,
    rewards,
    self_dealing,
    sessions,
)
from .accounts import GrantTarget
from .core import (
    GRANTABLE_KINDS,
    SECRETARY_GRANTABLE,
    actions,
    communities_of,
    community_id_of,
    grant_areas,
    holds,
    is_admin,
    may,
    require,
    rule,
    user_communities,
)
from .moderation import RatingOversight
from .projects import (
    PROJECT_COMMUNITY_STATUSES,
    PROJECT_PUBLIC_STATUSES,
    NeedFor,
    in_community,
    on_team,
    reads_community,
    team_status,
)
from .ratings import is_beneficiary, is_participant, is_recorder_or_participant
from .rewards import manages_reward_area
from .self_dealing import GUARDED_ACTIONS, beneficiaries_of, delivery_parties

__all__ = [
    "GUARDED_ACTIONS",
    "GRANTABLE_KINDS",
    "PROJECT_COMMUNITY_STATUSES",
    "PROJECT_PUBLIC_STATUSES",
    "SECRETARY_GRANTABLE",
    "GrantTarget",
    "NeedFor",
    "RatingOversight",
    "actions",
    "beneficiaries_of",
    "communities_of",
    "community_id_of",
    "delivery_parties",
    "grant_areas",
    "holds",
    "in_community",
    "is_admin",
    "is_beneficiary",
    "is_participant",
    "is_recorder_or_participant",
    "manages_reward_area",
    "may",
    "on_team",
    "reads_community",
    "require",
    "rule",
    "team_status",
    "user_communities",
]
