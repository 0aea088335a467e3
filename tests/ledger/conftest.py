"""Helpers for the ledger tests: raw SQL, unlocking the append-only triggers for
tamper tests, counting rows, real threads, resetting the database between
Hypothesis examples."""

from __future__ import annotations

import contextvars
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    Area,
    Delivery,
    User,
    ledger_trigger_ddl,
    ledger_trigger_drop_ddl,
    utcnow,
)

from ..conftest import ON_POSTGRES, _truncate_all
from ..factories import insert_approved_project

LEDGER_TABLES = ("ledger_transactions", "ledger_entries", "ledger_accounts")


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    The ``app`` fixture keeps an app context pushed for the whole test and Flask would
    reuse it for requests: ``g`` (Flask-WTF's cached CSRF token, Flask-Login's user)
    and the database session would leak from one request to the next.
    """

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def client(app):
    """A test client with per-request contexts (see :class:`IsolatedClient`)."""
    app.test_client_class = IsolatedClient
    return app.test_client()


def counts() -> dict[str, int]:
    """Return row counts of the ledger tables (fresh, outside the identity map)."""
    db.session.rollback()
    with db.engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()  # noqa: S608
            for t in (*LEDGER_TABLES, "idempotency_keys", "audit_log", "notifications")
        }


def raw(sql: str, **params: Any) -> Any:
    """Run one statement in its own committed transaction and return the result rows.

    The session's open read transaction (an old snapshot) is ended first.
    """
    db.session.rollback()
    with db.engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


@pytest.fixture
def unlocked():
    """Drop the append-only triggers for the test (tampering), then restore them."""
    dialect = db.engine.dialect.name
    with db.engine.begin() as conn:
        for stmt in ledger_trigger_drop_ddl(dialect):
            conn.exec_driver_sql(stmt)
    yield
    db.session.rollback()
    with db.engine.begin() as conn:
        for stmt in ledger_trigger_drop_ddl(dialect):
            conn.exec_driver_sql(stmt)
        for stmt in ledger_trigger_ddl(dialect):
            conn.exec_driver_sql(stmt)


def run_threads(n: int, target: Callable[[int], Any], *, timeout: float = 120) -> list[Any]:
    """Run ``target(i)`` in ``n`` real threads released together; return their results
    (an exception instance for a thread that raised)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a worker thread hung"
    return results


def reset_database(database_url: str, template: str) -> None:
    """Empty the test database between Hypothesis examples (same app, same URL)."""
    db.session.remove()
    db.engine.dispose()
    if ON_POSTGRES:
        _truncate_all(database_url)
        return
    path = Path(sa.make_url(database_url).database or "")
    for suffix in ("-wal", "-shm"):
        extra = Path(str(path) + suffix)
        if extra.exists():
            os.remove(extra)
    shutil.copyfile(template, path)


def in_atomic(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` inside ``atomic()`` and return its result."""
    with atomic():
        return fn()


@pytest.fixture
def engine_name(app) -> Iterator[str]:
    yield db.engine.dialect.name


def make_delivery_ids(community: Area, recorder: User, n: int = 1) -> list[int]:
    """Insert ``n`` bare deliveries of one approved project straight through the ORM.

    An earn references a real delivery (FK); the ledger tests need only its id, not
    the recording workflow (tested in tests/deliveries).
    """
    now = utcnow()
    with atomic():
        project_id = insert_approved_project(community.id, recorder.id, title="积分测试项目")
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


@pytest.fixture
def delivery(world) -> Callable[..., int]:
    """Return ``new(community=world.community_a) -> delivery id`` (a fresh delivery each call)."""

    def new(community: Area | None = None) -> int:
        community = community or world.community_a
        recorder = world.member_a if community.id == world.community_a.id else world.admin
        return make_delivery_ids(community, recorder)[0]

    return new
