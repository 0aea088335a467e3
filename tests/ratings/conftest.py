"""Helpers for the ratings and settlement tests: a recorded delivery (2 h, two
participants, two beneficiaries), deliveries whose window has closed, a snapshot of
everything a refused request must leave alone, and the API caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Role, utcnow
from volunteer_market.services.verify import verify

from ..factories import make_delivery, make_project, make_user
from ..guards import unchanged_guard
from ..ledger.conftest import (
    IsolatedClient,
    run_threads,  # noqa: F401  (re-exported for the tests)
)
from ..projects.conftest import Api

RATING_TABLES = (
    "ratings",
    "rating_replies",
    "settlements",
    "settlement_postings",
    "ledger_transactions",
    "ledger_entries",
    "notifications",
    "idempotency_keys",
)


@dataclass
class Scene:
    """A project of member_a (team: member_a2) and its deliveries."""

    world: Any
    project: Any
    delivery: Any = None
    #: beneficiary user id -> RatingCode (raw code and token, shown once)
    codes: dict[int, Any] = field(default_factory=dict)

    def record(
        self,
        *,
        participants: list[tuple[Any, float]] | None = None,
        beneficiaries: list[Any] | None = None,
        now: datetime | None = None,
        hours_ago: float = 3,
        length_hours: float = 2,
    ):
        """Record another delivery of the project (as member_a); return it."""
        w = self.world
        recorded = make_delivery(
            self.project,
            w.member_a,
            participants=participants
            if participants is not None
            else [(w.member_a, length_hours), (w.member_a2, length_hours)],
            beneficiaries=beneficiaries
            if beneficiaries is not None
            else [w.resident_a, w.resident_a2],
            hours_ago=hours_ago,
            length_hours=length_hours,
            now=now,
        )
        self.codes.update({c.user_id: c for c in recorded.rating_codes})
        return recorded.delivery

    def record_closed(self, days: float = 8, **kw):
        """Record a delivery whose rating window has already closed (recorded back then)."""
        return self.record(now=utcnow() - timedelta(days=days), **kw)


@pytest.fixture
def scene(world) -> Scene:
    """member_a's approved project with member_a2 on the team and one 2 h delivery for
    resident_a and resident_a2, awaiting ratings."""
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    s = Scene(world, project)
    s.delivery = s.record()
    return s


@pytest.fixture
def client(app):
    """A test client whose every request runs in its own app context (as in production)."""
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def api(client, world) -> Api:
    return Api(client, world)


def more_residents(world, n: int, grid: str = "grid_a1") -> list[Any]:
    """Create ``n`` extra residents of community A (usernames ``res_<i>``)."""
    out = []
    for i in range(n):
        user = make_user(f"res_{grid}_{i}", (Role.RESIDENT, world.areas[grid]))
        world.users[user.username] = user
        out.append(user)
    return out


def snapshot() -> dict[str, Any]:
    """Return what a refused request must not change, read on a fresh connection."""
    db.session.rollback()
    out: dict[str, Any] = {}
    with db.engine.connect() as conn:
        for table in RATING_TABLES:
            out[table] = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()  # noqa: S608
        out["audit_log"] = conn.exec_driver_sql(
            "SELECT count(*) FROM audit_log WHERE action <> 'token.issue'"
        ).scalar()
        out["rating_rows"] = conn.exec_driver_sql(
            "SELECT id, score, comment, is_proxy, via_code, entered_by_id, updated_at"
            " FROM ratings ORDER BY id"
        ).all()
        out["deliveries"] = conn.exec_driver_sql(
            "SELECT id, status FROM deliveries ORDER BY id"
        ).all()
        out["codes"] = conn.exec_driver_sql(
            "SELECT id, code_used_at FROM delivery_beneficiaries ORDER BY id"
        ).all()
        out["balances"] = conn.exec_driver_sql(
            "SELECT owner_key, balance, earned FROM ledger_accounts ORDER BY owner_key"
        ).all()
        conn.rollback()
    return out


@pytest.fixture
def unchanged():
    """``with unchanged(): ...`` asserts that a refused request changed nothing."""
    return unchanged_guard(snapshot)


def table_count(table: str, where: str = "", **params: Any) -> int:
    db.session.rollback()
    with db.engine.connect() as conn:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")  # noqa: S608
        return conn.execute(sa.text(sql), params).scalar_one()


def verified() -> bool:
    """Return True when every ledger invariant holds (asserting with the violation)."""
    db.session.rollback()
    found = verify()
    assert found is None, str(found)
    return True


def problem(resp) -> dict[str, Any]:
    assert resp.mimetype == "application/problem+json", resp.get_data(as_text=True)[:300]
    return resp.get_json()
