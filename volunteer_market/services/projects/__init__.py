"""Micro-projects (微项目): propose, edit, the reviewed lifecycle, teams, duplicate hints.

Design overview
---------------
* The lifecycle is one table, :data:`TRANSITIONS`: ``(state, action) -> Transition(next,
  by, comment_required)``. ``by`` says who may take the step: the owner (policy rule
  ``project.own``) or the community's secretary (``project.review``). Checks run in this
  order, so every refusal has one clear status:

  1. the caller cannot see the project → :class:`NotFound` (404);
  2. the caller holds no role that takes this action in any state → :class:`Forbidden`;
  3. no cell for ``(state, action)`` → :class:`Conflict` (409) naming the state;
  4. the caller holds none of the cell's roles → :class:`Forbidden`;
  5. a required comment is missing → :class:`ValidationFailed` (422).

* ``approved`` is the live state (DESIGN's "active/approved"): teams form, menu services
  are ordered and deliveries recorded while a project is approved. There is no separate
  ``active`` state because nothing anybody acts on happens between the two.
* Every state change is a conditional ``UPDATE ... WHERE status = :current`` (a racing
  second change gets 409), a :class:`ProjectTransition` row, an audit entry and a
  notification to the owner; a submission also notifies the community's secretaries.
* Team size (owner + active members) lives on the project and is moved only by a
  conditional ``UPDATE projects SET team_size = team_size + 1 WHERE team_size < capacity``,
  so concurrent approvals can never overfill a team on either engine.

Rooms of the package
--------------------
``lifecycle``  the transition table, :func:`transition` (submit, withdraw, review,
               cancel, complete) and :func:`review`
``editing``    create and edit a project, its cover; field validation
``teams``      join requests, approve/decline, leave; the team size guard
``reading``    get, the visible lists and filters, the review queue, the history,
               similar titles (the duplicate hint)
"""

from __future__ import annotations

from .editing import EDITABLE_FIELDS, check_editable, create_project, set_cover, update_project
from .lifecycle import (
    ACTION_ROLES,
    BY_RULE,
    COMMENT_MAX,
    DECISIONS,
    TRANSITIONS,
    By,
    Transition,
    review,
    transition,
)
from .reading import (
    SIMILAR_STATUSES,
    SIMILAR_THRESHOLD,
    get_project,
    get_visible_project,
    list_projects,
    review_queue,
    similar_projects,
    title_similarity,
    transitions_of,
    visible_condition,
)
from .teams import (
    TEAM_OPEN_STATUSES,
    approve_member,
    decline_member,
    leave_team,
    request_join,
    team_of,
)

__all__ = [
    "ACTION_ROLES",
    "BY_RULE",
    "COMMENT_MAX",
    "DECISIONS",
    "EDITABLE_FIELDS",
    "SIMILAR_STATUSES",
    "SIMILAR_THRESHOLD",
    "TEAM_OPEN_STATUSES",
    "TRANSITIONS",
    "By",
    "Transition",
    "approve_member",
    "check_editable",
    "create_project",
    "decline_member",
    "get_project",
    "get_visible_project",
    "leave_team",
    "list_projects",
    "request_join",
    "review",
    "review_queue",
    "set_cover",
    "similar_projects",
    "team_of",
    "title_similarity",
    "transition",
    "transitions_of",
    "update_project",
    "visible_condition",
]
