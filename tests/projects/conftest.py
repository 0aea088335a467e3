"""Fixtures and helpers of the tests of projects, teams, needs, deliveries and
notifications (``tests/projects``, ``tests/needs``, ``tests/deliveries``,
``tests/notifications``: their conftests import the fixtures from here).

The tables of these aggregates change together (a delivery closes a need, an order
creates one, every change notifies), so one ``unchanged`` guard watches them all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from volunteer_market.extensions import db

from ..conftest import csrf_token, login
from ..guards import unchanged_guard

WORK_TABLES = (
    "projects",
    "project_transitions",
    "team_memberships",
    "needs",
    "deliveries",
    "delivery_participants",
    "delivery_beneficiaries",
    "delivery_no_shows",
    "audit_log",
    "notifications",
)


def snapshot() -> dict[str, Any]:
    """Return row counts and the mutable state of the project, team, need and delivery
    tables (and the audit log and notifications).

    Read on a fresh connection, so it shows what is committed (not the session's view).
    """
    out: dict[str, Any] = {}
    with db.engine.connect() as conn:
        for table in WORK_TABLES:
            out[table] = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()  # noqa: S608
        # Bearer tokens issued lazily by the ``api`` helper are not part of the change.
        out["audit_log"] = conn.exec_driver_sql(
            "SELECT count(*) FROM audit_log WHERE action <> 'token.issue'"
        ).scalar()
        out["project_rows"] = conn.exec_driver_sql(
            "SELECT id, status, team_size, title, capacity, cover_path FROM projects ORDER BY id"
        ).all()
        out["need_rows"] = conn.exec_driver_sql(
            "SELECT id, status, assignee_id, project_id FROM needs ORDER BY id"
        ).all()
        out["team_rows"] = conn.exec_driver_sql(
            "SELECT id, status FROM team_memberships ORDER BY id"
        ).all()
        out["notification_reads"] = conn.exec_driver_sql(
            "SELECT id, read_at FROM notifications ORDER BY id"
        ).all()
        conn.rollback()
    return out


@pytest.fixture
def unchanged():
    """Use as ``with unchanged(): ...`` to assert a refused request changed nothing."""
    return unchanged_guard(snapshot)


def iso(dt: datetime) -> str:
    return dt.isoformat()


def now() -> datetime:
    return datetime.now(UTC)


def hours_ago(h: float) -> datetime:
    return now() - timedelta(hours=h)


def problem_fields(resp) -> dict[str, list[str]]:
    body = resp.get_json()
    return body.get("errors", {}) if body else {}


class StatementCounter:
    """Count SQL statements executed on the engine (``before_cursor_execute``)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.statements: list[str] = []

    def _on(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if (
            not statement.lstrip()
            .upper()
            .startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))
        ):
            self.statements.append(statement)

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._on)
        return False

    @property
    def count(self) -> int:
        return len(self.statements)


class Api:
    """Call the JSON API as a given world user (one bearer token per user)."""

    def __init__(self, client, world):
        self.client = client
        self.world = world
        self._headers: dict[int, dict[str, str]] = {}

    def headers(self, user) -> dict[str, str]:
        from ..factories import bearer

        if user.id not in self._headers:
            self._headers[user.id] = bearer(user)
        return self._headers[user.id]

    def _user(self, who):
        return self.world.users[who] if isinstance(who, str) else who

    def get(self, who, path: str, **params):
        return self.client.get(path, headers=self.headers(self._user(who)), query_string=params)

    def post(self, who, path: str, json=None, **kw):
        return self.client.post(path, headers=self.headers(self._user(who)), json=json, **kw)

    def patch(self, who, path: str, json=None):
        return self.client.patch(path, headers=self.headers(self._user(who)), json=json)

    def put(self, who, path: str, **kw):
        return self.client.put(path, headers=self.headers(self._user(who)), **kw)


@pytest.fixture
def api(client, world) -> Api:
    return Api(client, world)


@pytest.fixture
def app_config(app_config, tmp_path) -> dict:
    """Uploads of these tests go to a temporary folder."""
    return {**app_config, "UPLOAD_FOLDER": str(tmp_path / "uploads")}


def multipart(data: bytes, *, field: str = "file", filename: str = "x.png", **form: str) -> dict:
    """Return ``client.put/post`` kwargs for a multipart body built in memory.

    (Werkzeug's test builder spools big uploads to a temporary file it never closes,
    which ``filterwarnings = error`` would turn into a failure.)
    """
    boundary = "----vm-test-boundary"
    parts = []
    for name, value in form.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return {
        "data": b"".join(parts),
        "content_type": f"multipart/form-data; boundary={boundary}",
    }


# --- pages -----------------------------------------------------------------------------


class FreshContextClient(FlaskClient):
    """A test client whose every request runs in its own app context.

    The ``app`` fixture keeps one app context open for the whole test, and a request
    reuses an open app context, so Flask-Login's per-request cache in ``g`` would leak
    one client's user into another client's requests.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def as_user(app, world):
    """Return a signed-in test client for a world user (one per user)."""
    clients = {}

    def get(name: str):
        if name not in clients:
            c = FreshContextClient(app, app.response_class, use_cookies=True)
            login(c, name)
            clients[name] = c
        return clients[name]

    return get


def fresh() -> None:
    """See what the requests committed: end the test session's snapshot, drop its cache."""
    db.session.rollback()
    db.session.expire_all()


def post(c, path: str, data: dict | None = None, **kw):
    return c.post(path, data={**(data or {}), "csrf_token": csrf_token(c, "/")}, **kw)


def assert_csp_clean(html: str) -> None:
    assert "<script" not in html
    assert " style=" not in html


def text(resp) -> str:
    return resp.get_data(as_text=True)
