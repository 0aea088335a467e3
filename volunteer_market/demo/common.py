"""What every part of the demo shares: the password, the communities, look-ups.

The parts (``people``, ``ledger``, ``projects``, ``ratings``, ``rewards``) import this
module and nothing else of the demo; the package entry (``demo/__init__.py``) imports
the parts. So the demo has no import cycle.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..models import Area, User
from ..services import users as user_service

DEMO_PASSWORD = "demo12345"  # noqa: S105 - documented demo credential

#: Area name paths from the district down, as created by ``demo.people``.
HANYANG_DISTRICT = ("汉阳区",)
LONGYANG = ("汉阳区", "龙阳街")
LONGHU = ("汉阳区", "龙阳街", "龙湖东岸社区")
ZIJING = ("汉阳区", "琴断口街", "紫荆花社区")


def area_by_path(names: tuple[str, ...]) -> Area | None:
    """Return the area reached by following ``names`` from a root, or ``None``."""
    parent_id: int | None = None
    area: Area | None = None
    for name in names:
        area = db.session.execute(
            sa.select(Area).where(
                Area.name == name,
                Area.parent_id.is_(None) if parent_id is None else Area.parent_id == parent_id,
            )
        ).scalar_one_or_none()
        if area is None:
            return None
        parent_id = area.id
    return area


def demo_area(names: tuple[str, ...]) -> Area:
    """Return the demo area at ``names``.

    :raises LookupError: the area is not there (the people are not loaded yet).
    """
    area = area_by_path(names)
    if area is None:
        raise LookupError(" > ".join(names))
    return area


def demo_user(username: str) -> User:
    """Return a demo user by username.

    :raises LookupError: no such user (the people are not loaded yet).
    """
    user = user_service.find_by_username(username)
    if user is None:
        raise LookupError(username)
    return user
