"""Fixtures of the sessions tests: those of ``tests/projects/conftest.py`` plus an
``unchanged`` guard that also watches the session tables, and session helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import User
from volunteer_market.services import sessions as session_service

from ..factories import make_project
from ..guards import unchanged_guard
from ..projects.conftest import api, app_config, as_user  # noqa: F401
from ..projects.conftest import snapshot as work_snapshot

SESSION_TABLES = ("project_sessions", "session_signups", "session_attendance", "calendar_feeds")


def snapshot() -> dict[str, Any]:
    out = work_snapshot()
    with db.engine.connect() as conn:
        for table in SESSION_TABLES:
            out[table] = conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1").all()  # noqa: S608
        conn.rollback()
    return out


@pytest.fixture
def unchanged():
    """Use as ``with unchanged(): ...`` to assert a refused request changed nothing."""
    return unchanged_guard(snapshot)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def project(world):
    """An approved project of member_a (community A) with member_a2 on the team."""
    return make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )


def make_session(project, *, starts_in: float = 24, hours: float = 2, slots: int = 3, at=None):
    """Schedule a session of ``project`` starting ``starts_in`` hours from ``at`` (now)."""
    at = at or now()
    start = at + timedelta(hours=starts_in)
    owner = db.session.get(User, project.owner_id)
    with atomic():
        return session_service.create_session(
            owner,
            project.id,
            starts_at=start,
            ends_at=start + timedelta(hours=hours),
            place="社区活动室",
            slots=slots,
            now=at,
        )


def sign_up(user, session, *, at=None):
    with atomic():
        return session_service.signup(user, session.id, now=at)


def session_row(session_id: int):
    db.session.rollback()
    db.session.expire_all()
    return session_service.get_session(session_id)
