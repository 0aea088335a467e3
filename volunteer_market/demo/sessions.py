"""Demo data of sessions and attendance: two sessions of 义务理发 (龙湖东岸社区, owner
member_chen), all through the services.

* the last one, two days ago 9:00-11:00 at 社区活动室: 刘 and 赵 signed up, the owner marked
  刘 present from the paper sheet and 赵 never came; its delivery is not made yet (the
  owner's session page offers it);
* the next one, in three days, two places: 刘 holds one.

Idempotent: nothing is made when the project has sessions already.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ..database import atomic
from ..extensions import db
from ..models import Project, ProjectSession, utcnow
from ..services import sessions as session_service
from .common import LONGHU, demo_area, demo_user
from .projects import _at

PLACE = "社区活动室"


def load() -> None:
    """Load the sessions (idempotent)."""
    project_id = db.session.scalar(
        sa.select(Project.id).where(
            Project.community_id == demo_area(LONGHU).id, Project.title == "义务理发"
        )
    )
    if project_id is None:
        raise LookupError("义务理发")
    if db.session.scalar(
        sa.select(ProjectSession.id).where(ProjectSession.project_id == project_id)
    ):
        return
    chen, liu, zhao = demo_user("member_chen"), demo_user("member_liu"), demo_user("member_zhao")
    start = _at(2, 9)
    with atomic():
        last = session_service.create_session(
            chen,
            project_id,
            starts_at=start,
            ends_at=start + timedelta(hours=2),
            place=PLACE,
            slots=4,
            now=start - timedelta(days=1),
        )
    for member in (liu, zhao):
        with atomic():
            session_service.signup(member, last.id, now=start - timedelta(hours=1))
    with atomic():  # the paper sign-in sheet, entered after the session
        session_service.check_in(chen, last.id, user_id=liu.id, now=start + timedelta(hours=3))
    now = utcnow()
    upcoming = _at(-3, 9)
    with atomic():
        nxt = session_service.create_session(
            chen,
            project_id,
            starts_at=upcoming,
            ends_at=upcoming + timedelta(hours=2),
            place=PLACE,
            slots=2,
            now=now,
        )
    with atomic():
        session_service.signup(liu, nxt.id, now=now)
