"""Helpers for the rewards tests: an API caller, a snapshot of everything a refused
request must leave alone, and ledger verification."""

from __future__ import annotations

import contextvars
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from flask.testing import FlaskClient

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, utcnow
from volunteer_market.services import ledger

from ..factories import bearer, insert_approved_project, post_earn, verified  # noqa: F401 - re-exported
from ..guards import unchanged_guard


def bare_delivery(community, recorder) -> int:
    """Insert a bare delivery of an approved project (an earn needs a real delivery id;
    the recording workflow is tested in tests/deliveries); return its id."""
    now = utcnow()
    with atomic():
        project_id = insert_approved_project(community.id, recorder.id, title="积分测试项目")
        row = Delivery(
            project_id=project_id,
            community_id=community.id,
            recorded_by_id=recorder.id,
            started_at=now - timedelta(hours=3),
            ended_at=now - timedelta(hours=1),
            rating_deadline=now + timedelta(days=7),
        )
        db.session.add(row)
        db.session.flush()
        return row.id


def earn(member, community, points: int, *, when: datetime | None = None):
    """Post an earn of ``points`` for ``member`` in ``community`` (dated ``when``)."""
    delivery_id = bare_delivery(community, member)
    if when is None:
        return post_earn(member, community, delivery_id=delivery_id, points=points)
    with mock.patch("volunteer_market.services.ledger.posting.utcnow", return_value=when), atomic():
        return ledger.earn(
            None,
            member_id=member.id,
            community_id=community.id,
            delivery_id=delivery_id,
            points=points,
            minutes=60,
            policy_id=None,
        )


def snapshot() -> dict[str, Any]:
    """Return balances, stock, redemptions, stock changes and ledger counts, read on a
    fresh connection (what is committed)."""
    db.session.rollback()
    out: dict[str, Any] = {}
    with db.engine.connect() as conn:
        q = conn.exec_driver_sql
        out["accounts"] = q("SELECT id, balance, earned FROM ledger_accounts ORDER BY id").all()
        out["transactions"] = q("SELECT count(*) FROM ledger_transactions").scalar()
        out["entries"] = q("SELECT count(*) FROM ledger_entries").scalar()
        out["rewards"] = q(
            "SELECT id, stock, cost, name, is_active, retired_at, per_member_limit FROM rewards"
            " ORDER BY id"
        ).all()
        out["redemptions"] = q(
            "SELECT id, status, final_transaction_id FROM redemptions ORDER BY id"
        ).all()
        out["stock_changes"] = q("SELECT count(*) FROM reward_stock_changes").scalar()
        out["idempotency_keys"] = q("SELECT count(*) FROM idempotency_keys").scalar()
        out["audit"] = q("SELECT count(*) FROM audit_log WHERE action <> 'token.issue'").scalar()
        out["notifications"] = q("SELECT count(*) FROM notifications").scalar()
        conn.rollback()
    return out


@pytest.fixture
def unchanged():
    """``with unchanged(): ...`` asserts that a refused request changed nothing."""
    return unchanged_guard(snapshot)


class Api:
    """Call the JSON API as a given world user (one bearer token per user)."""

    def __init__(self, client, world):
        self.client = client
        self.world = world
        self._headers: dict[int, dict[str, str]] = {}

    def headers(self, user, extra=None) -> dict[str, str]:
        if user.id not in self._headers:
            self._headers[user.id] = bearer(user)
        return {**self._headers[user.id], **(extra or {})}

    def _user(self, who):
        return self.world.users[who] if isinstance(who, str) else who

    def get(self, who, path: str, **params):
        return self.client.get(path, headers=self.headers(self._user(who)), query_string=params)

    def post(self, who, path: str, json=None, headers=None, **kw):
        return self.client.post(
            path, headers=self.headers(self._user(who), headers), json=json, **kw
        )

    def patch(self, who, path: str, json=None):
        return self.client.patch(path, headers=self.headers(self._user(who)), json=json)

    def put(self, who, path: str, **kw):
        return self.client.put(path, headers=self.headers(self._user(who)), **kw)


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own (empty) context, as in
    production: ``g`` (Flask-WTF's cached CSRF token, Flask-Login's user) and the
    database session do not leak from the test's app context into requests."""

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def client(app):
    """A test client with per-request contexts (see :class:`IsolatedClient`)."""
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def api(client, world) -> Api:
    return Api(client, world)


@pytest.fixture
def app_config(app_config, tmp_path) -> dict:
    """Uploads of these tests go to a temporary folder."""
    return {**app_config, "UPLOAD_FOLDER": str(tmp_path / "uploads")}
