"""Fixtures of the foundation tests: same contract as tests/conftest.py, but faster.

Every test still gets a fresh database (and, if it asks for ``world``, the world of
tests/factories.py in it), but

* the app is built once per module (``create_app`` registers every blueprint and
  builds the OpenAPI spec: the most expensive part of a test's set-up). A module
  changes the configuration with a module-scoped ``app_config_overrides`` fixture;
* the world is built once per session through the services and then restored per
  test: a file copy on SQLite, TRUNCATE + re-insert of its rows on PostgreSQL;
* the test client runs every request in its own app context (:class:`IsolatedClient`).
"""

from __future__ import annotations

import contextvars
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from volunteer_market import create_app
from volunteer_market.extensions import db, limiter
from volunteer_market.models import Area, User

from ..conftest import ON_POSTGRES, TEST_CONFIG, _reset_postgres
from ..factories import World, build_world

FOUNDATION_TABLES = ("users", "role_grants", "areas", "api_tokens", "audit_log")


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in a fresh context, as in production.

    The ``app`` fixture keeps an app context pushed for the whole test, and Flask
    reuses it for requests made inside it: ``g`` (and with it Flask-Login's cached
    ``g._login_user``) and the database session would then leak from one request to
    the next -- a replayed cookie or a second client would look signed in. Running
    each request in an empty :class:`contextvars.Context` gives it its own app
    context, ``g`` and session, torn down at the end of the request.
    """

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contextvars.Context().run(super().open, *args, **kwargs)


def build_app(url: str, **extra: Any):  # type: ignore[no-untyped-def]
    """Return an app on ``url`` with the test configuration plus ``extra``."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, **extra})
    app.test_client_class = IsolatedClient
    return app


# --- the world, built once --------------------------------------------------------------------


@dataclass
class WorldTemplate:
    area_ids: dict[str, int]
    sqlite_file: Path | None = None  #: a SQLite file holding the world
    rows: dict[str, list[dict]] = field(default_factory=dict)  #: PostgreSQL: rows per table


@pytest.fixture(scope="session")
def world_template(database_template, tmp_path_factory) -> WorldTemplate:
    """Build the factories' world once through the services and keep it."""
    if ON_POSTGRES:  # built in the test database itself: creating databases is slow
        app = build_app(database_template)
        with app.app_context():
            _reset_postgres(db.engine, None)
            w = build_world()
            area_ids = {k: a.id for k, a in w.areas.items()}
            db.session.remove()
            with db.engine.connect() as conn:
                rows = {
                    t.name: [dict(r._mapping) for r in conn.execute(t.select())]
                    for t in db.metadata.sorted_tables
                }
            _reset_postgres(db.engine, None)
            db.engine.dispose()
        return WorldTemplate(area_ids=area_ids, rows=rows)
    path = tmp_path_factory.mktemp("world") / "world.db"
    shutil.copyfile(database_template, path)
    app = build_app(f"sqlite:///{path}")
    with app.app_context():
        w = build_world()
        area_ids = {k: a.id for k, a in w.areas.items()}
        db.session.remove()
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.engine.dispose()
    return WorldTemplate(area_ids=area_ids, sqlite_file=path)


# --- one app per module, a fresh database per test ------------------------------------------------


@pytest.fixture(scope="module")
def app_config_overrides() -> dict:
    """Configuration a module adds to the test configuration (override in the module)."""
    return {}


@pytest.fixture(scope="module")
def module_app(database_template, tmp_path_factory, app_config_overrides):
    """The module's app and, on SQLite, the database file it works on."""
    if ON_POSTGRES:
        url, path = database_template, None
    else:
        path = tmp_path_factory.mktemp("db") / "test.db"
        shutil.copyfile(database_template, path)
        url = f"sqlite:///{path}"
    app = build_app(url, **app_config_overrides)
    yield app, path
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def database_url(request, module_app, database_template, world_template) -> str:
    """Reset the module's database: empty, or holding the world if the test asks for it."""
    app, path = module_app
    with app.app_context():
        if "world" in request.fixturenames:
            restore_world(app, path, world_template)
        else:
            reset_empty(path, database_template)
    return app.config["SQLALCHEMY_DATABASE_URI"]


def reset_empty(path: Path | None, database_template: str) -> None:
    """Empty the current app's database (inside its app context)."""
    if path is None:
        _reset_postgres(db.engine, None)
    else:
        _replace_sqlite_file(path, Path(database_template))


def _replace_sqlite_file(path: Path, source: Path) -> None:
    db.engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, path)


def restore_world(app, path: Path | None, world_template: WorldTemplate) -> None:  # type: ignore[no-untyped-def]
    """Reset the app's database to the world (inside an app context of ``app``)."""
    if path is None:
        _reset_postgres(db.engine, world_template.rows)
    else:
        assert world_template.sqlite_file is not None
        _replace_sqlite_file(path, world_template.sqlite_file)


@pytest.fixture
def app_config(module_app) -> dict:
    """The configuration the module's app was built with (read-only here)."""
    return dict(module_app[0].config)


@pytest.fixture
def app(module_app, database_url):
    app = module_app[0]
    with app.app_context():
        # the extension is global: its ``enabled`` flag comes from the app built last
        limiter.enabled = bool(app.config.get("RATELIMIT_ENABLED", True))
        limiter.reset()  # this clears whichever storage is in use
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def world(app, world_template) -> World:
    """The world of tests/factories.py (already in the database), loaded in this session."""
    w = World()
    for user in db.session.scalars(sa.select(User).order_by(User.id)):
        w.users[user.username] = user
        _ = user.grants  # load the grants (and their areas) now
    for key, area_id in world_template.area_ids.items():
        w.areas[key] = db.session.get(Area, area_id)
    return w


# --- helpers ---------------------------------------------------------------------------------------


def count_rows(*tables: str) -> dict[str, int]:
    """Return ``{table: row count}``, read on a fresh connection (not the test's session)."""
    with db.engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()  # noqa: S608
            for t in tables or FOUNDATION_TABLES
        }


def fresh_session() -> None:
    """End the test's own read transaction so it sees what requests have committed since.

    (On SQLite in WAL mode a read transaction keeps reading one snapshot; requests made
    through :class:`IsolatedClient` use their own sessions.)
    """
    db.session.rollback()
    db.session.expire_all()
