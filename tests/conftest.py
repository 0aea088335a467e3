"""Test fixtures: a fresh app and database per test, on SQLite or PostgreSQL.

Set ``DATABASE_URL=postgresql://...`` to run the suite on PostgreSQL; otherwise
every test gets its own SQLite file (a copy of a template built once per session).
With pytest-xdist each worker uses its own PostgreSQL database
(``<name>_<worker>``), created on demand.

The schema comes from the models (``db.create_all`` plus the DDL attached to
them, e.g. triggers); ``tests/test_migrations.py`` proves the migrations build
the same schema.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

os.environ.setdefault("SECRET_KEY", "test-secret-key")

from volunteer_market import create_app  # noqa: E402
from volunteer_market.config import normalise_database_url  # noqa: E402
from volunteer_market.extensions import db, limiter  # noqa: E402

from .factories import World, build_world  # noqa: E402

BASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = BASE_URL.startswith("postgres")

TEST_CONFIG = {
    "TESTING": True,
    "VM_ENV": "testing",
    "PASSWORD_HASH_MEMORY_KIB": 8,
    "PASSWORD_HASH_TIME_COST": 1,
    "RATELIMIT_STORAGE_URI": "memory://",
    "SERVER_NAME": None,
}


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def postgres_url_for(name_suffix: str) -> str:
    """Return a PostgreSQL URL for a database named after DATABASE_URL's plus a suffix,
    creating the database if needed."""
    url = sa.make_url(normalise_database_url(BASE_URL))
    name = f"{url.database}_{name_suffix}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("select 1 from pg_database where datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    u = sa.make_url(url)
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
    admin.dispose()


def create_schema(url: str) -> None:
    """Create every table (and attached DDL such as triggers) in an empty database."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        if ON_POSTGRES:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        db.create_all()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Build the schema once: a template SQLite file, or the worker's PostgreSQL database."""
    if ON_POSTGRES:
        url = postgres_url_for(f"t_{_worker_id()}")
        create_schema(url)
        yield url
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        create_schema(f"sqlite:///{path}")
        yield str(path)


def _reset_postgres(engine: sa.Engine, rows: dict[str, list[dict]] | None) -> None:
    """Empty every table (and restart its id sequence), then insert ``rows``.

    Only the tables that hold rows are touched, with DELETE rather than TRUNCATE (which
    creates new files for every table and costs over a second per test); tables whose
    triggers refuse DELETE (the append-only ledger) are truncated instead.
    """
    tables = db.metadata.sorted_tables
    with engine.begin() as conn:
        probe = " UNION ALL ".join(
            f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")"  # noqa: S608
            for t in tables
        )
        nonempty = {name for (name,) in conn.exec_driver_sql(probe)}
        guarded = {
            name
            for (name,) in conn.exec_driver_sql(
                "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
            )
        }
        truncate = [t.name for t in tables if t.name in nonempty and t.name in guarded]
        if truncate:
            conn.exec_driver_sql(
                "TRUNCATE " + ", ".join(f'"{n}"' for n in truncate) + " RESTART IDENTITY CASCADE"
            )
        for table in reversed(tables):
            if table.name in nonempty and table.name not in guarded:
                conn.execute(table.delete())
        for table in tables:
            data = (rows or {}).get(table.name)
            if data:
                conn.execute(table.insert(), data)
            if "id" in table.c and (data or table.name in nonempty):
                conn.execute(
                    sa.text(
                        "SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                        f'COALESCE((SELECT max(id) FROM "{table.name}"), 0) + 1, false)'  # noqa: S608
                    ),
                    {"t": f'"{table.name}"'},
                )


def _truncate_all(url: str) -> None:
    engine = sa.create_engine(normalise_database_url(url))
    _reset_postgres(engine, None)
    engine.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> str:
    """A URL of an empty database with the full schema, private to this test."""
    if ON_POSTGRES:
        _truncate_all(database_template)
        return database_template
    path = tmp_path / "test.db"
    shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(database_url: str) -> dict:
    """The config given to ``create_app`` (tests may extend it before ``app`` is built)."""
    return {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url}


@pytest.fixture
def app(app_config: dict):
    app = create_app(app_config)
    limiter.reset()
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def world(app) -> World:
    """A small area tree with users of every role (see tests/factories.py)."""
    return build_world()


_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """Return a CSRF token for ``client``'s session, read from a page that has a form.

    The test app context outlives requests, so Flask-WTF's per-request cache of the
    token in ``g`` is dropped first (it would be stale after a login changed the session).
    """
    from flask import g

    g.pop("csrf_token", None)
    resp = client.get(path)
    match = _CSRF_RE.search(resp.get_data(as_text=True))
    assert match, f"no CSRF token on {path} (status {resp.status_code})"
    return match.group(1)


def login(client, username: str, password: str = "password123") -> None:
    """Sign ``client`` in through the login form (asserts success)."""
    token = csrf_token(client, "/login")
    resp = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]


def post_form(client, path: str, data: dict, *, token_from: str = "/"):
    """POST a form with a valid CSRF token taken from ``token_from``."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, token_from)})
