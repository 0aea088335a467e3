"""bench/lean.py, the baselines of ``bench.run`` (issue 21): they must write what they
claim, or the ratios in docs/benchmarks.md compare with nothing.

On a database of their own (a SQLite file, or ``<DATABASE_URL's database>_lean_<worker>``
on PostgreSQL): the lean double-entry POST keeps the ledger balanced and its hash chain
linked, also under 4 threads posting at once; the hand-written Core settlement writes a
settlement's rows (one transaction, two entries, 3 areas x 4 periods of rollups whose
score buckets count each member once per area and period) and refuses a second
settlement of the same delivery; the lean app's endpoints answer as documented.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bench import lean
from tests.conftest import ON_POSTGRES, drop_postgres_database, postgres_url_for


@pytest.fixture
def lean_engine(tmp_path: Any) -> Iterator[sa.Engine]:
    if ON_POSTGRES:
        url = postgres_url_for(f"lean_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    else:
        url = f"sqlite:///{tmp_path / 'lean.db'}"
    engine = lean.make_engine(url)
    lean.create_tables(engine, deliveries=12)
    yield engine
    lean.drop_tables(engine)
    engine.dispose()
    if ON_POSTGRES:
        drop_postgres_database(url)


def _one(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).one()


def _chain_links(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(lean.TRANSACTIONS.c.prev_hash, lean.TRANSACTIONS.c.hash).order_by(
                lean.TRANSACTIONS.c.id
            )
        ).all()
        head = conn.execute(sa.select(lean.HEAD.c.last_hash, lean.HEAD.c.transaction_count)).one()
    assert rows, "no transaction was written"
    assert rows[0].prev_hash == "0" * 64
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    assert head.last_hash == rows[-1].hash
    assert head.transaction_count == len(rows)


def test_lean_posting_is_balanced_and_chained_under_threads(lean_engine: sa.Engine) -> None:
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(10):
                with lean_engine.begin() as conn:
                    lean.lean_posting(conn, 1 + (t * 10 + i) % lean.MEMBER_ACCOUNTS, f"t{t}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    total, accounts = _one(lean_engine, "select sum(balance), count(*) from lean_accounts")
    assert (int(total), accounts) == (0, lean.MEMBER_ACCOUNTS + 1)
    assert _one(lean_engine, "select count(*), sum(amount) from lean_entries") == (80, 0)
    assert _one(lean_engine, "select balance from lean_accounts where id = 0") == (-40,)
    _chain_links(lean_engine)


def test_core_settlement_writes_a_settlements_rows_once(lean_engine: sa.Engine) -> None:
    for delivery_id in (1, 2, 3):
        with lean_engine.begin() as conn:
            lean.core_settlement(conn, delivery_id, member=7, points=10)
    with lean_engine.begin() as conn:
        lean.core_settlement(conn, 4, member=8, points=5)
    with pytest.raises(RuntimeError, match="not open"), lean_engine.begin() as conn:
        lean.core_settlement(conn, 2, member=9)
    assert _one(lean_engine, "select count(*) from lean_settlements") == (4,)
    assert _one(lean_engine, "select count(*) from lean_settlement_postings") == (4,)
    assert _one(lean_engine, "select count(*), sum(amount) from lean_entries") == (8, 0)
    assert _one(lean_engine, "select balance from lean_accounts where id = 7") == (30,)
    assert _one(lean_engine, "select count(*) from lean_deliveries where status = 'settled'") == (
        4,
    )
    # 3 areas x 4 periods for each of the two members, with the summed points
    assert _one(
        lean_engine, "select count(*), sum(points) from lean_ranking_members where user_id = 7"
    ) == (12, 360)
    # every (area, period) bucket set counts each member once: 7 at 30, 8 at 5
    with lean_engine.connect() as conn:
        buckets = conn.execute(
            sa.text("select points, sum(members) from lean_ranking_score_counts group by points")
        ).all()
    assert sorted((int(p), int(n)) for p, n in buckets) == [(5, 12), (30, 12)]
    assert _one(lean_engine, "select deliveries from lean_annual_stats where user_id = 7") == (3,)
    assert _one(lean_engine, "select count(*) from lean_audit_log") == (4,)
    assert _one(lean_engine, "select count(*) from lean_notifications") == (4,)
    _chain_links(lean_engine)


def test_lean_app_answers(lean_engine: sa.Engine) -> None:
    app = lean.create_app(lean_engine.url.render_as_string(hide_password=False))
    client = app.test_client()
    bare = client.get("/bare")
    assert bare.status_code == 200 and bare.get_json()["username"] == "bare"
    posted = client.post("/post", json={"member": 3})
    assert posted.status_code == 201 and posted.get_json()["transaction_id"] >= 1
    refused = client.post("/post", json={"member": lean.MEMBER_ACCOUNTS + 1})
    assert refused.status_code == 422
    assert _one(lean_engine, "select balance from lean_accounts where id = 3") == (1,)
    assert _one(lean_engine, "select count(*) from lean_transactions") == (1,)
    app.extensions["lean_engine"].dispose()
