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
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import selectinload

os.environ.setdefault("SECRET_KEY", "test-secret-key")

from volunteer_market import create_app  # noqa: E402
from volunteer_market.config import normalise_database_url  # noqa: E402
from volunteer_market.extensions import db, limiter  # noqa: E402
from volunteer_market.models import Area, User  # noqa: E402

from .factories import World, build_world  # noqa: E402

BASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = BASE_URL.startswith("postgres")

TEST_CONFIG = {
    "TESTING": True,
    "VM_ENV": "testing",
    "PASSWORD_HASH_MEMORY_KIB": 8,
    "PASSWORD_HASH_TIME_COST": 1,
    "RATELIMIT_STORAGE_URI": "memory://",
    # The API's request limit (600/minute per user in production) is off: the load,
    # replay and fuzz tests send more than that per user. tests/security/
    # test_api_rate_limit.py turns it on with a tiny limit.
    "API_RATE_LIMIT": "",
    "SERVER_NAME": None,
    # Imports run inside the request: a background thread outliving its test would hold
    # a connection across the next test's database reset (an unclosed-connection warning
    # on PostgreSQL). tests/onboarding/test_imports.py tests the thread runner itself.
    "IMPORT_RUNNER": "inline",
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
        # Tests never survive a server crash, so a commit need not wait for the WAL to
        # reach the disk (the suite commits thousands of times a second).
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
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


#: Tables with triggers (the append-only ledger), per PostgreSQL database name.
_GUARDED: dict[str, set[str]] = {}
#: One engine per PostgreSQL test database for the per-test reset: a new engine per test
#: cost a connection and SQLAlchemy's dialect initialisation (~30 ms) every time.
_RESET_ENGINES: dict[str, sa.Engine] = {}


def _reset_engine(url: str) -> sa.Engine:
    engine = _RESET_ENGINES.get(url)
    if engine is None:
        engine = _RESET_ENGINES[url] = sa.create_engine(
            normalise_database_url(url), pool_size=1, pool_pre_ping=True
        )
    return engine


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
        guarded = _GUARDED.get(engine.url.database or "")
        if guarded is None:  # the schema's triggers do not change within a session
            guarded = _GUARDED[engine.url.database or ""] = {
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
    _reset_postgres(_reset_engine(url), None)


@pytest.fixture(scope="session")
def _worker_sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worker's SQLite test file: one path, a fresh copy of the template per test.

    A fixed path keeps the app configuration identical from test to test, so the app
    can be reused (see :func:`app`).
    """
    return tmp_path_factory.mktemp("db") / "test.db"


@dataclass
class WorldTemplate:
    """The world of tests/factories.py, built once per worker and restored per test."""

    area_ids: dict[str, int]
    user_ids: dict[str, int]
    sqlite_file: Path | None = None  #: SQLite: a database file holding the world
    rows: dict[str, list[dict]] = field(default_factory=dict)  #: PostgreSQL: rows per table


@pytest.fixture(scope="session")
def world_template(database_template: str, tmp_path_factory) -> WorldTemplate:
    """Build the world once through the services (as ``build_world`` does per test) and
    keep it: a SQLite file, or the rows of every table on PostgreSQL."""
    if ON_POSTGRES:  # built in the worker's database itself, then emptied again
        url, path = database_template, None
    else:
        path = tmp_path_factory.mktemp("world") / "world.db"
        shutil.copyfile(database_template, path)
        url = f"sqlite:///{path}"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        if ON_POSTGRES:
            _reset_postgres(db.engine, None)
        w = build_world()
        template = WorldTemplate(
            area_ids={k: a.id for k, a in w.areas.items()},
            user_ids={k: u.id for k, u in w.users.items()},
            sqlite_file=path,
        )
        db.session.remove()
        with db.engine.connect() as conn:
            if ON_POSTGRES:
                template.rows = {
                    t.name: [dict(r._mapping) for r in conn.execute(t.select())]
                    for t in db.metadata.sorted_tables
                }
            else:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        if ON_POSTGRES:
            _reset_postgres(db.engine, None)
        db.engine.dispose()
    return template


@pytest.fixture
def database_url(request, database_template: str, _worker_sqlite_path: Path) -> str:
    """A URL of a database with the full schema, private to this test: empty, or holding
    the world if the test uses the ``world`` fixture (restored from a copy made once)."""
    template = (
        request.getfixturevalue("world_template") if "world" in request.fixturenames else None
    )
    if ON_POSTGRES:
        _reset_postgres(_reset_engine(database_template), template.rows if template else None)
        return database_template
    path = _worker_sqlite_path
    # A new file (new inode) each time: a connection some earlier test left open keeps
    # the old file and can never see, or write into, this test's database.
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    source = template.sqlite_file if template and template.sqlite_file else database_template
    shutil.copyfile(source, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(database_url: str) -> dict:
    """The config given to ``create_app`` (tests may extend it before ``app`` is built)."""
    return {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url}


#: Configuration keys read per request (not when the app is built): a test may give
#: them per-test values without needing an app of its own.
RUNTIME_CONFIG_KEYS = frozenset({"UPLOAD_FOLDER"})

#: Apps already built in this worker, by configuration (see :func:`app`).
_APPS: dict[str, tuple[Flask, dict, tuple]] = {}


def _count(value: object) -> int:
    """The number of leaves in nested dicts/lists (Flask's hook registries)."""
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_count(v) for v in value)
    return 1


def _app_shape(app: Flask) -> tuple[int, ...]:
    """What a test could add to an app that would leak into the next test using it."""
    return (
        len(list(app.url_map.iter_rules())),
        _count(app.error_handler_spec),
        _count(app.before_request_funcs),
        _count(app.after_request_funcs),
        _count(app.teardown_request_funcs),
        _count(app.template_context_processors),
    )


@pytest.fixture
def app(app_config: dict):
    """The app for ``app_config``, built once per worker and configuration.

    ``create_app`` builds the whole OpenAPI document (about half a second of CPU), so
    an app is reused by every test with the same configuration. Each test still starts
    from the configuration the app was built with (changes a test made to
    ``app.config`` are undone), with a fresh app context, an empty limiter store and a
    database of its own. A test that adds routes or hooks to the app retires it.
    """
    key = repr(sorted((k, repr(v)) for k, v in app_config.items() if k not in RUNTIME_CONFIG_KEYS))
    cached = _APPS.get(key)
    if cached is None:
        built = create_app(app_config)
        cached = (built, dict(built.config), _app_shape(built))
        _APPS[key] = cached
    app, config, shape = cached
    app.config.clear()
    app.config.update(config)
    app.config.update({k: v for k, v in app_config.items() if k in RUNTIME_CONFIG_KEYS})
    # The limiter is one global extension whose ``enabled`` flag is set by the app built
    # last; an app reused here gets its own setting back.
    limiter.enabled = bool(app.config.get("RATELIMIT_ENABLED", True))
    limiter.reset()
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    if _app_shape(app) != shape:
        _APPS.pop(key, None)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def world(app, world_template: WorldTemplate) -> World:
    """A small area tree with users of every role (see tests/factories.py).

    ``database_url`` has already restored it in the test's database; this loads it.
    """
    w = World()
    # Three statements instead of one per user, per user's grants and per area: the
    # loop below then finds every object in the session's identity map.
    db.session.scalars(
        sa.select(User)
        .where(User.id.in_(world_template.user_ids.values()))
        .options(selectinload(User.grants))
    ).all()
    db.session.scalars(sa.select(Area).where(Area.id.in_(world_template.area_ids.values()))).all()
    for key, user_id in world_template.user_ids.items():
        user = db.session.get(User, user_id)
        assert user is not None
        _ = user.grants  # loaded now, as build_world() leaves them
        w.users[key] = user
    for key, area_id in world_template.area_ids.items():
        w.areas[key] = db.session.get(Area, area_id)
    # End the read transaction, as build_world()'s last commit did: an open one would
    # pin this session to a snapshot older than the test's own requests.
    db.session.commit()
    return w


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
