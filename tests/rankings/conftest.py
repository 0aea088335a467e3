"""Helpers for the ranking tests: a settable ledger clock, postings, snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, Project, Role, RoleGrant, User, utcnow
from volunteer_market.services import ledger as ledger_service
from volunteer_market.services import rankings
from volunteer_market.services import users as user_service
from volunteer_market.services.ledger import posting as ledger_posting

from ..factories import insert_approved_project

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROLLUP_TABLES = ("ranking_members", "ranking_teams", "ranking_score_counts")
BARE_PROJECT = "排行测试项目"


def local(text: str) -> datetime:
    """Return ``'2026-11-30 23:59'`` read as Asia/Shanghai time, tz-aware."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


class Clock:
    """The ledger's clock: ``clock.set(local('2026-11-30 23:59'))``; None = real time."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def set(self, moment: datetime | None) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return (self.now or datetime.now(UTC)).astimezone(UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """Patch the time function the ledger stamps transactions with."""
    c = Clock()
    monkeypatch.setattr(ledger_posting, "utcnow", c)
    yield c


def bare_deliveries(community, recorder, n: int = 1) -> list[int]:
    """Insert ``n`` bare deliveries of the community's test project (an earn references
    a real delivery; the recording workflow is tested in tests/deliveries)."""
    now = utcnow()
    with atomic():
        project = db.session.scalars(
            sa.select(Project).where(
                Project.community_id == community.id, Project.title == BARE_PROJECT
            )
        ).first()
        if project is not None:
            project_id = project.id
        else:
            project_id = insert_approved_project(community.id, recorder.id, title=BARE_PROJECT)
        rows = [
            Delivery(
                project_id=project_id,
                community_id=community.id,
                recorded_by_id=recorder.id,
                started_at=now - timedelta(hours=3),
                ended_at=now - timedelta(hours=1),
                rating_deadline=now + timedelta(days=7),
            )
            for _ in range(n)
        ]
        db.session.add_all(rows)
        db.session.flush()
        return [d.id for d in rows]


def earn(member, community, points: int, *, minutes: int = 120, delivery_id: int | None = None):
    """Post an earn for ``member`` in ``community`` (of a fresh bare delivery unless given)."""
    if delivery_id is None:
        delivery_id = bare_deliveries(community, member)[0]
    with atomic():
        return ledger_service.earn(
            None,
            member_id=member.id,
            community_id=community.id,
            delivery_id=delivery_id,
            points=points,
            minutes=minutes,
            policy_id=None,
        )


def reverse(tx, reason: str = "申诉成立"):
    with atomic():
        return ledger_service.reverse(None, tx, reason)


def board(area, period: str = "all", viewer=None, page: int = 1, per_page: int = 20):
    """Return the ranking (fresh read)."""
    db.session.rollback()
    return rankings.ranking(area, period, page, per_page, viewer=viewer)


def standings(area, period: str = "all", viewer=None, **kw) -> list[tuple]:
    """Return ``[(rank, username-or-display_name, points)]`` of a ranking."""
    return [
        (i["rank"], i["display_name"], i["points"])
        for i in board(area, period, viewer, **kw)["items"]
    ]


def rollups() -> dict[str, list[tuple]]:
    """Return every rollup row (committed state), sorted."""
    db.session.rollback()
    out = {}
    with db.engine.connect() as conn:
        for table in ROLLUP_TABLES:
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()  # noqa: S608
            out[table] = sorted(
                tuple(r) for r in rows if not (table == "ranking_score_counts" and r[-1] == 0)
            )
    return out


def rebuild() -> dict[str, int]:
    db.session.rollback()
    with atomic():
        return rankings.rebuild()


def raw(sql: str, **params):
    """Run SQL behind the services' back (committed at once); rows or the row count."""
    db.session.rollback()
    with db.engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


def set_active(user, active: bool) -> None:
    """Suspend or reinstate by setting the attribute (no service call: the session
    hook of ``services.rankings`` notices the change)."""
    with atomic():
        db.session.get(User, user.id).is_active = active


def revoke_member_grant(user, area) -> None:
    """End the user's active member grant on ``area`` through ``users.revoke_role``."""
    with atomic():
        grant = db.session.scalars(
            sa.select(RoleGrant).where(
                RoleGrant.user_id == user.id,
                RoleGrant.area_id == area.id,
                RoleGrant.role == Role.MEMBER,
                RoleGrant.revoked_at.is_(None),
            )
        ).one()
        user_service.revoke_role(None, grant)
