"""Append-only: the database refuses UPDATE and DELETE of ledger rows on both engines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import LedgerTransaction, ledger_trigger_ddl, ledger_trigger_drop_ddl
from volunteer_market.services.verify import verify

from ..factories import give_points
from .conftest import counts, raw

ATTEMPTS = [
    "UPDATE ledger_entries SET amount = amount + 1",
    "UPDATE ledger_entries SET amount = 999 WHERE id = 1",
    "DELETE FROM ledger_entries",
    "DELETE FROM ledger_entries WHERE id = 1",
    "UPDATE ledger_transactions SET reason = 'rewritten'",
    "UPDATE ledger_transactions SET hash = prev_hash WHERE id = 1",
    "DELETE FROM ledger_transactions WHERE id = 2",
    "DELETE FROM ledger_transactions",
]


@pytest.mark.parametrize("sql", ATTEMPTS)
def test_raw_update_and_delete_are_refused(world, sql):
    give_points(world.member_a, 10)
    give_points(world.member_a, 5)
    before = counts()
    snapshot = raw("SELECT id, amount FROM ledger_entries ORDER BY id")
    with pytest.raises(sa.exc.DBAPIError) as info:
        raw(sql)
    assert "append-only" in str(info.value)
    assert counts() == before
    assert raw("SELECT id, amount FROM ledger_entries ORDER BY id") == snapshot
    assert verify() is None


def test_orm_update_is_refused(world):
    tx = give_points(world.member_a, 10)
    with pytest.raises(sa.exc.DBAPIError), atomic():
        db.session.get(LedgerTransaction, tx.id).reason = "edited"
        db.session.flush()
    db.session.rollback()
    assert db.session.get(LedgerTransaction, tx.id).reason == "测试积分"


def test_triggers_exist_on_this_engine(app):
    dialect = db.engine.dialect.name
    with db.engine.connect() as conn:
        if dialect == "sqlite":
            names = set(
                conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                .scalars()
                .all()
            )
        else:
            names = set(
                conn.exec_driver_sql(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                ).scalars()
            )
    expected = {
        "sqlite": {
            "trg_ledger_transactions_no_update",
            "trg_ledger_transactions_no_delete",
            "trg_ledger_entries_no_update",
            "trg_ledger_entries_no_delete",
        },
        "postgresql": {"trg_ledger_transactions_append_only", "trg_ledger_entries_append_only"},
    }[dialect]
    assert expected <= names


def test_trigger_ddl_for_migrations():
    sqlite = ledger_trigger_ddl("sqlite")
    pg = ledger_trigger_ddl("postgresql")
    assert len(sqlite) == 4 and all(s.startswith("CREATE TRIGGER") for s in sqlite)
    assert pg[0].startswith("CREATE OR REPLACE FUNCTION ledger_refuse_change()")
    assert len(pg) == 3  # the function once, a trigger per table
    assert "%" not in " ".join(sqlite + pg)  # safe for any DB-API paramstyle
    assert len(ledger_trigger_drop_ddl("sqlite")) == 4
    assert ledger_trigger_drop_ddl("postgresql")[-1].startswith("DROP FUNCTION")
    with pytest.raises(ValueError):
        ledger_trigger_ddl("mysql")
