"""Migrations: one head, upgrade from an empty database, and no difference between
the migrated schema and the models (what ``flask db check`` checks), on the engine
under test."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from volunteer_market import create_app
from volunteer_market.extensions import db, migrate

from .conftest import ON_POSTGRES, TEST_CONFIG, drop_postgres_database, postgres_url_for


@pytest.fixture
def empty_app(tmp_path):
    if ON_POSTGRES:
        url = postgres_url_for("mig_" + uuid.uuid4().hex[:8])
    else:
        url = f"sqlite:///{tmp_path / 'migrate.db'}"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    if ON_POSTGRES:
        drop_postgres_database(url)


def _script(app) -> ScriptDirectory:
    config = migrate.get_config(app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config)


def test_single_head(empty_app):
    assert len(_script(empty_app).get_heads()) == 1


def test_upgrade_from_empty_matches_models(empty_app):
    upgrade()
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(ctx, db.metadata)
        assert diff == [], diff
        rev = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    assert rev == _script(empty_app).get_current_head()


def test_downgrade_to_base_and_up_again(empty_app):
    upgrade()
    downgrade(revision="base")
    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    assert tables == set()
    upgrade()


def test_upgrade_installs_the_append_only_ledger_triggers(empty_app):
    upgrade()
    with db.engine.connect() as conn:
        if ON_POSTGRES:
            rows = conn.execute(
                sa.text(
                    "select tgrelid::regclass::text from pg_trigger "
                    "where not tgisinternal and tgname like 'trg_ledger_%'"
                )
            ).scalars()
        else:
            rows = conn.execute(
                sa.text(
                    "select tbl_name from sqlite_master where type = 'trigger' and name like 'trg_ledger_%'"
                )
            ).scalars()
        tables = set(rows)
    assert tables == {"ledger_transactions", "ledger_entries"}
