"""Display names for stored enum values (roles, area kinds), translatable.

The database and the API store English values (``grid_worker``, ``community``);
pages show these labels instead: Chinese msgids (the zh_CN default) with English
in ``translations/en``. Templates call ``role_label(value)`` and
``area_kind_label(value)`` (registered as Jinja globals by :func:`register`).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l

from ..models import AreaKind, Role

ROLE_LABELS = {
    Role.MEMBER: _l("下沉党员"),
    Role.RESIDENT: _l("居民"),
    Role.GRID_WORKER: _l("网格员"),
    Role.SECRETARY: _l("社区书记"),
    Role.OFFICER: _l("街道/区管理员"),
    Role.ADMIN: _l("系统管理员"),
}

AREA_KIND_LABELS = {
    AreaKind.DISTRICT: _l("区"),
    AreaKind.STREET: _l("街道"),
    AreaKind.COMMUNITY: _l("社区"),
    AreaKind.GRID: _l("网格"),
}


def role_label(value: Any) -> str:
    """Return the display name of a role (an enum member or its stored value)."""
    label = ROLE_LABELS.get(str(value))  # type: ignore[call-overload]
    return str(label) if label is not None else str(value)


def area_kind_label(value: Any) -> str:
    """Return the display name of an area kind (an enum member or its stored value)."""
    label = AREA_KIND_LABELS.get(str(value))  # type: ignore[call-overload]
    return str(label) if label is not None else str(value)


def register(app: Flask) -> None:
    """Make the label helpers available to every template."""
    app.jinja_env.globals.update(role_label=role_label, area_kind_label=area_kind_label)
