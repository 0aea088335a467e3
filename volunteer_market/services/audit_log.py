"""Reading the audit log (审计日志): whose entries a reader sees, the filters, and what
of an entry's detail he is shown.

Design overview
---------------
Writing is ``services/audit.py`` (every state change, in its own transaction). Reading:

* **Scope** (rules ``audit.page``, ``audit.view``): the admin reads every entry; a secretary the entries
  whose area is his community or one of its grids; an officer those of his subtree.
  Entries without an area (accounts, the default policy) are the admin's only. The
  scope is a set of materialized-path prefixes joined against ``areas`` (one range
  scan each), and ``ix_audit_log_area_id`` (area, id) serves the newest-first page.
* **Filters**: ``area_id`` (that area and its subtree; an area outside the reader's
  scope is 404, no probing), ``object_type``, ``object_id``, ``actor_id``, ``since`` and
  ``until`` (calendar dates in the default zone, both inclusive). Validation is the
  schema's (``schemas/audit.py``); the service trusts its typed arguments.
* **Detail** is shown through :func:`visible_detail`: writers store ids, states, counts
  and scores, never personal data (``models/audit.py``), but two kinds of value need a
  reader check all the same. Personal fields (:data:`PERSONAL_KEYS`: phone, address,
  household tags) are shown only to a reader who may see that user's personal data
  (``user.view_personal``, DESIGN.md "Privacy") and to nobody on an entry about
  anything but a user. Free text typed by staff (:data:`FREE_TEXT_KEYS`: comments and
  reasons, which may name a resident's circumstances) is shown to those who run the
  community (its secretary, officers over it), not to the admin, who takes no part in
  community business and sees no personal data. A hidden value is replaced by
  :data:`HIDDEN`, so the reader knows there was one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Area, AuditEntry, Role, User
from ..zones import DEFAULT_ZONE
from . import permissions
from .errors import NotFound

#: Detail keys holding personal data (DESIGN.md "Privacy").
PERSONAL_KEYS = frozenset({"phone", "address", "household_tags"})
#: Detail keys holding free text typed by staff.
FREE_TEXT_KEYS = frozenset({"comment", "reason", "answer", "text"})
#: What a hidden value is shown as.
HIDDEN = "***"


@dataclass(frozen=True)
class AuditFilters:
    """The filters of one read (all optional; dates inclusive, default zone)."""

    area_id: int | None = None
    object_type: str | None = None
    object_id: int | None = None
    actor_id: int | None = None
    since: date | None = None
    until: date | None = None


def scope_paths(reader: User) -> list[str] | None:
    """Return the path prefixes of the areas whose entries ``reader`` sees (None: all).

    :raises Forbidden: the reader may read no part of the log.
    """
    permissions.require(reader, "audit.page")
    if permissions.is_admin(reader):
        return None
    return sorted({a.path for a in permissions.grant_areas(reader, [Role.SECRETARY, Role.OFFICER])})


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=DEFAULT_ZONE)


def entries(reader: User, filters: AuditFilters) -> sa.Select[Any]:
    """Return the statement of the entries ``reader`` sees under ``filters``, newest
    first: rows ``(AuditEntry, actor display name, area name)``.

    :raises Forbidden: the reader may read no part of the log.
    :raises NotFound: ``filters.area_id`` is no area, or one outside the reader's scope.
    """
    paths = scope_paths(reader)
    actor = aliased(User)
    stmt = (
        sa.select(AuditEntry, actor.display_name, Area.name)
        .outerjoin(actor, actor.id == AuditEntry.actor_id)
        .outerjoin(Area, Area.id == AuditEntry.area_id)
    )
    if paths is not None:
        stmt = stmt.where(sa.or_(*[Area.path.startswith(p, autoescape=True) for p in paths]))
    if filters.area_id is not None:
        area = db.session.get(Area, filters.area_id)
        if area is None or not permissions.may(reader, "audit.view", area):
            raise NotFound("Area not found.")
        stmt = stmt.where(Area.path.startswith(area.path, autoescape=True))
    if filters.object_type is not None:
        stmt = stmt.where(AuditEntry.object_type == filters.object_type)
    if filters.object_id is not None:
        stmt = stmt.where(AuditEntry.object_id == filters.object_id)
    if filters.actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == filters.actor_id)
    if filters.since is not None:
        stmt = stmt.where(AuditEntry.created_at >= _start_of(filters.since))
    if filters.until is not None:
        stmt = stmt.where(AuditEntry.created_at < _start_of(filters.until + timedelta(days=1)))
    return cast("sa.Select[Any]", stmt.order_by(AuditEntry.id.desc()))


def _runs_area(reader: User, area_id: int | None, cache: dict[int | None, bool]) -> bool:
    """Whether ``reader`` is the secretary of, or an officer over, the entry's area."""
    if area_id not in cache:
        area = db.session.get(Area, area_id) if area_id is not None else None
        cache[area_id] = area is not None and permissions.holds(
            reader, [Role.SECRETARY, Role.OFFICER], area
        )
    return cache[area_id]


def _sees_personal(reader: User, entry: AuditEntry) -> bool:
    if entry.object_type != "user" or entry.object_id is None:
        return False
    user = db.session.get(User, entry.object_id)
    return user is not None and permissions.may(reader, "user.view_personal", user)


def visible_detail(
    reader: User, entry: AuditEntry, cache: dict[int | None, bool] | None = None
) -> dict[str, Any] | None:
    """Return the part of ``entry.detail`` that ``reader`` may see (hidden values are
    :data:`HIDDEN`); see the design overview."""
    if not entry.detail:
        return entry.detail
    cache = {} if cache is None else cache
    shown: dict[str, Any] = {}
    for key, value in entry.detail.items():
        if (
            key in PERSONAL_KEYS
            and not _sees_personal(reader, entry)
            or key in FREE_TEXT_KEYS
            and not _runs_area(reader, entry.area_id, cache)
        ):
            value = HIDDEN
        shown[key] = value
    return shown


def present(reader: User, rows: list[Any]) -> list[dict[str, Any]]:
    """Return the rows of :func:`entries` as dicts with only what ``reader`` may see."""
    cache: dict[int | None, bool] = {}
    out = []
    for entry, actor_name, area_name in rows:
        out.append(
            {
                "id": entry.id,
                "created_at": entry.created_at,
                "actor_id": entry.actor_id,
                "actor_name": actor_name,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "area_id": entry.area_id,
                "area_name": area_name,
                "detail": visible_detail(reader, entry, cache),
                "origin": entry.origin,
            }
        )
    return out


#: The object types the services audit (the page's filter offers these).
OBJECT_TYPES = (
    "appeal",
    "area",
    "delivery",
    "evaluation",
    "import_job",
    "ledger_transaction",
    "need",
    "objection",
    "points_policy",
    "project",
    "rating",
    "rating_reply",
    "redemption",
    "registration",
    "reward",
    "user",
)
