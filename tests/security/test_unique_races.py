"""Unique violations are 409 and SQL parameters never reach a log (issue 20, item 4).

Before: on PostgreSQL 12 concurrent ``POST /api/v1/users`` with one username answered
500 (``uq_users_username``) and the logged error held the phone, address, household tags
and password hash from the SQL parameters; concurrent role grants 500 too
(``uq_role_grants_active``). Now ``errors.handle_integrity_error`` answers 409 for a
unique constraint on both engines and every engine has ``hide_parameters=True``.
"""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import RoleGrant, User
from volunteer_market.services import users as user_service

from ..factories import bearer

PHONE = "13987650042"
ADDRESS = "琴台大道 88 号 5 栋 1201"
TAGS = "低保户,行动不便"
PASSWORD = "s3cret-password-xyz"
BODY = {
    "username": "racer",
    "password": PASSWORD,
    "display_name": "同名",
    "phone": PHONE,
    "address": ADDRESS,
    "household_tags": TAGS,
}
THREADS = 12


def _race(client, method: str, path: str, headers: list[dict], json: dict) -> list:
    """Send one request per header set from its own thread, released together."""
    barrier = threading.Barrier(len(headers))
    results: list = [None] * len(headers)

    def send(i: int) -> None:
        barrier.wait()
        try:
            results[i] = client.open(path, method=method, json=json, headers=headers[i])
        except BaseException as exc:  # noqa: BLE001  (reported below)
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(headers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(not isinstance(r, BaseException) for r in results), results
    return results


def _assert_nothing_personal_logged(caplog, *secrets: str) -> None:
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    for secret in secrets:
        assert secret not in text, f"{secret!r} reached the log"


def test_concurrent_duplicate_users_are_one_201_and_409s(app, client, world, caplog):
    caplog.set_level(logging.DEBUG)  # SQLAlchemy's engine logs statements at INFO
    headers = [bearer(world.admin) for _ in range(THREADS)]
    db.session.commit()
    responses = _race(client, "POST", "/api/v1/users", headers, BODY)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (THREADS - 1), statuses
    for resp in responses:
        if resp.status_code == 409:
            assert resp.mimetype == "application/problem+json"
    db.session.remove()
    users = db.session.scalars(sa.select(User).where(User.username == "racer")).all()
    assert len(users) == 1
    _assert_nothing_personal_logged(caplog, PHONE, ADDRESS, TAGS, PASSWORD, users[0].password_hash)


def test_concurrent_grants_of_one_role_are_one_201_and_409s(app, client, world, caplog):
    caplog.set_level(logging.DEBUG)
    headers = [bearer(world.admin) for _ in range(THREADS)]
    db.session.commit()
    path = f"/api/v1/users/{world.member_c.id}/roles"
    body = {"role": "member", "area_id": world.community_b.id}
    statuses = sorted(r.status_code for r in _race(client, "POST", path, headers, body))
    assert statuses == [201] + [409] * (THREADS - 1), statuses
    db.session.remove()
    active = db.session.scalars(
        sa.select(RoleGrant).where(
            RoleGrant.user_id == world.member_c.id,
            RoleGrant.area_id == world.community_b.id,
            RoleGrant.revoked_at.is_(None),
        )
    ).all()
    assert len(active) == 1


@pytest.fixture
def check_skipped(monkeypatch):
    """The service's own check misses the other request's row (as under a real race on
    PostgreSQL): only the database's unique constraint is left."""
    monkeypatch.setattr(user_service, "find_by_username", lambda _name: None)


def test_a_unique_violation_is_409_on_every_engine(client, world, check_skipped, caplog):
    caplog.set_level(logging.DEBUG)
    headers = bearer(world.admin)
    body = {**BODY, "username": "member_a"}  # taken
    before = db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()
    resp = client.post("/api/v1/users", json=body, headers=headers)
    assert resp.status_code == 409, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["title"] == "Conflict"
    db.session.remove()
    after = db.session.execute(sa.select(sa.func.count()).select_from(User)).scalar_one()
    assert after == before
    _assert_nothing_personal_logged(caplog, PHONE, ADDRESS, TAGS, PASSWORD)


def test_sql_parameters_are_hidden_on_the_engine(app):
    assert db.engine.hide_parameters is True
