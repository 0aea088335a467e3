"""Checking the rows of a file against the community: every error with row and field.

A row is refused when its name or phone number is missing or malformed, its grid is no
grid of the community, a household tag is not one of :data:`HOUSEHOLD_TAGS`, its phone
number is on an earlier row too, or the number belongs to someone the importer may not
change (a person with a role outside this community, or a staff role). A number that
belongs to a resident or member of this community is an update (safe to re-run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import Area, AreaKind, ImportKind, Role, RoleGrant, User
from ...models.users import HOUSEHOLD_TAGS, normalize_phone
from ..permissions import SECRETARY_GRANTABLE

NAME_MAX = 100
TEXT_MAX = 255
_TAG_SPLIT = re.compile(r"[,，、;；\s]+")

PHONE_INVALID = "Not a valid mobile phone number (11 digits, e.g. 13812345678)."
NAME_MISSING = "A name is required."
NAME_TOO_LONG = f"At most {NAME_MAX} characters."
TEXT_TOO_LONG = f"At most {TEXT_MAX} characters."
GRID_UNKNOWN = "No grid of this name in the community."
PHONE_ELSEWHERE = "This phone number belongs to a person of another community."
PHONE_STAFF = "This phone number belongs to a staff account."


def unknown_tag(tag: str) -> str:
    """The message of a household tag outside the known list."""
    return f"Unknown household tag: {tag}. Use: {', '.join(HOUSEHOLD_TAGS)}."


def duplicate_of(row: int) -> str:
    """The message of a phone number already on an earlier row."""
    return f"The same phone number is on row {row}."


@dataclass
class Checked:
    """The rows to write (normalised values) and the refused rows' errors."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0


def grids_of(community: Area) -> dict[str, int]:
    """Return the community's grids by name (stripped)."""
    grids = db.session.execute(
        sa.select(Area.name, Area.id).where(
            Area.parent_id == community.id, Area.kind == AreaKind.GRID
        )
    ).all()
    return {name.strip(): gid for name, gid in grids}


def existing_by_phone(phones: list[str]) -> dict[str, User]:
    """Return the users holding these phone numbers (grants loaded), by number."""
    out: dict[str, User] = {}
    for start in range(0, len(phones), 1000):
        chunk = phones[start : start + 1000]
        for user in db.session.scalars(sa.select(User).where(User.phone.in_(chunk))):
            if user.phone is not None:
                out[user.phone] = user
    return out


def may_update(user: User, community: Area) -> str | None:
    """Return None if an import into ``community`` may change ``user``, else the reason:
    every role they hold is a member, resident or grid-worker role in this community."""
    for grant in user.grants:
        if grant.role not in SECRETARY_GRANTABLE or grant.area is None:
            return PHONE_STAFF
        if not grant.area.path.startswith(community.path):
            return PHONE_ELSEWHERE
    return None


def _tags(value: str) -> tuple[str | None, list[str]]:
    tags = [t for t in _TAG_SPLIT.split(value) if t]
    unknown = [t for t in tags if t not in HOUSEHOLD_TAGS]
    return (",".join(dict.fromkeys(tags)) or None), unknown


def check_rows(
    kind: ImportKind, community: Area, rows: list[tuple[int, dict[str, str]]]
) -> Checked:
    """Return the valid rows (normalised) and an error per refused field, in row order."""
    out = Checked()
    grids = grids_of(community)
    seen: dict[str, int] = {}
    candidates: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []
    for number, raw in rows:
        errors: list[dict[str, Any]] = []

        def refuse(column: str, message: str, number: int = number, errors: list = errors) -> None:
            errors.append({"row": number, "field": column, "message": message})

        name = raw.get("display_name", "").strip()
        if not name:
            refuse("display_name", NAME_MISSING)
        elif len(name) > NAME_MAX:
            refuse("display_name", NAME_TOO_LONG)
        phone = normalize_phone(raw.get("phone", ""))
        if phone is None:
            refuse("phone", PHONE_INVALID)
        elif phone in seen:
            refuse("phone", duplicate_of(seen[phone]))
        else:
            seen[phone] = number
        grid_name = raw.get("grid", "").strip()
        grid_id = None
        if grid_name:
            grid_id = grids.get(grid_name)
            if grid_id is None:
                refuse("grid", GRID_UNKNOWN)
        tags, unknown = _tags(raw.get("household_tags", ""))
        for tag in unknown:
            refuse("household_tags", unknown_tag(tag))
        if tags is not None and len(tags) > TEXT_MAX:
            refuse("household_tags", TEXT_TOO_LONG)
        values: dict[str, Any] = {
            "row": number,
            "display_name": name,
            "phone": phone,
            "area_id": grid_id or community.id,
        }
        for column in ("address", "home_unit"):
            text = raw.get(column, "").strip()
            if len(text) > TEXT_MAX:
                refuse(column, TEXT_TOO_LONG)
            if column in raw:
                values[column] = text or None
        if "household_tags" in raw:
            values["household_tags"] = tags
        candidates.append((number, values, errors))
    existing = existing_by_phone(sorted(seen))
    for _number, values, errors in candidates:
        user = existing.get(values["phone"]) if values["phone"] else None
        if user is not None:
            reason = may_update(user, community)
            if reason is not None:
                errors.append({"row": values["row"], "field": "phone", "message": reason})
        if errors:
            out.refused += 1
            out.errors.extend(errors)
        else:
            out.rows.append(values)
    return out


def role_of(kind: ImportKind) -> Role:
    """The role an import of ``kind`` grants."""
    return Role.RESIDENT if kind == ImportKind.RESIDENTS else Role.MEMBER


def held_roles(user_ids: list[int], role: Role, community: Area) -> set[int]:
    """Return which of ``user_ids`` hold ``role`` in ``community`` (or a grid of it)."""
    held: set[int] = set()
    for start in range(0, len(user_ids), 1000):
        chunk = user_ids[start : start + 1000]
        held.update(
            db.session.scalars(
                sa.select(RoleGrant.user_id)
                .join(Area, Area.id == RoleGrant.area_id)
                .where(
                    RoleGrant.user_id.in_(chunk),
                    RoleGrant.role == role,
                    RoleGrant.revoked_at.is_(None),
                    Area.path.startswith(community.path, autoescape=True),
                )
            )
        )
    return held
