"""bench.generate writes exactly what the services would have written.

``test_generated_equals_service_replay`` draws a small plan (2 streets x 2 communities, 20 members, ~240
ledger entries: ratings, automatic and secretary settlements, zero-point lines, redemptions
fulfilled/cancelled/rejected/expired/held, limited stock, per-member limits), writes
it in bulk with ``bench.generate``, replays the *same events* through the service
layer (``ratings.rate``, ``settlement.settle``, ``rewards.create_reward``,
``redemptions.request/fulfil/cancel/reject/expire_hold``) at the same instants (the
services' clock is frozen per event) into a second database that holds the same base
rows, and compares the two databases table by table, ids included: ledger accounts,
transactions (hash chain), entries, head, ranking rollups, ratings, deliveries,
beneficiaries, settlements and their lines, rewards, redemptions and stock changes.
The audit log and notifications the services also write are not generated and not
compared. It then runs every ``ledger verify`` check on the generated database and
checks ``rankings.rebuild()`` reproduces its rollups.

Other sizes: ``BENCH_GENERATE_MEMBERS`` / ``BENCH_GENERATE_ENTRIES`` / ``BENCH_GENERATE_SEED``
(default 20 / 240 / 8; the coverage assertions may need another seed).
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

import volunteer_market.services as services_pkg
from bench import generate as gen
from tests.conftest import ON_POSTGRES, postgres_url_for
from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, Redemption, Reward, User
from volunteer_market.models import types as model_types
from volunteer_market.services import rankings, ratings, redemptions, rewards
from volunteer_market.services import settlement as settlement_service
from volunteer_market.services import verify as verifier
from volunteer_market.services.redemptions import codes as redemption_codes

MEMBERS = int(os.environ.get("BENCH_GENERATE_MEMBERS", "20"))
ENTRIES = int(os.environ.get("BENCH_GENERATE_ENTRIES", "240"))
#: Redemption requests per earn: high, so that a small plan has every outcome.
REDEEM_RATE = 0.4
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
#: A seed whose small plan reaches every path asserted below (change it if the
#: generator's drawing changes and the coverage assertions say so).
SEED = int(os.environ.get("BENCH_GENERATE_SEED", "8"))

#: Tables compared row for row (every table the events write, except audit/notifications).
COMPARED = (
    "points_policies",
    "deliveries",
    "delivery_participants",
    "delivery_beneficiaries",
    "ratings",
    "settlements",
    "settlement_postings",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_entries",
    "ledger_head",
    "rewards",
    "redemptions",
    "reward_stock_changes",
    "ranking_members",
    "ranking_teams",
    "ranking_score_counts",
    "annual_stats",
    "annual_projects",
)


@functools.cache
def _clock_modules() -> list[Any]:
    """The service modules (packages' modules included) that call ``models.utcnow`` by
    their own name."""
    out = []
    for info in pkgutil.walk_packages(services_pkg.__path__, "volunteer_market.services."):
        module = importlib.import_module(info.name)
        if getattr(module, "utcnow", None) is model_types.utcnow:
            out.append(module)
    return out


@contextmanager
def frozen_clock(at: datetime) -> Iterator[None]:
    """Make every service module's ``utcnow()`` return ``at``."""
    saved = _clock_modules()
    for module in saved:
        module.utcnow = lambda: at  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in saved:
            module.utcnow = model_types.utcnow  # type: ignore[attr-defined]


def replay(url: str, p: gen.Plan, recorded: dict[str, list[tuple]], applied: list[tuple]) -> None:
    """Write the plan's base rows and the deliveries as recorded (awaiting ratings,
    codes unused), then apply ``applied`` through the services."""
    db.drop_all()
    db.create_all()
    with db.engine.connect() as conn, conn.begin():
        gen.load_base(conn, p)
        for name, reset in (("deliveries", {"status": "awaiting_ratings"}),
                            ("delivery_participants", {}),
                            ("delivery_beneficiaries", {"code_used_at": None})):  # fmt: skip
            table = db.metadata.tables[name]
            rows = [{**dict(zip(table.c.keys(), row, strict=True)), **reset}
                    for row in recorded[name]]  # fmt: skip
            conn.execute(table.insert(), rows)
        gen._set_sequences(conn)
    with frozen_clock(p.since), atomic():
        for i, values in enumerate(p.rewards, start=1):
            assert rewards.create_reward(None, **values).id == i
    get = db.session.get
    real_secrets = redemption_codes.secrets
    for event in applied:
        at, kind, *args = event
        with frozen_clock(at), atomic():
            if kind == "rate":
                dlv, resident, score, comment = args
                ratings.rate(get(User, resident), get(Delivery, dlv), score, comment, now=at)
            elif kind == "settle":
                dlv, secretary, unrated = args
                settlement_service.settle(
                    get(User, secretary), get(Delivery, dlv), confirm_unrated=unrated, now=at
                )
            elif kind == "request":
                member, reward_id, qty, salt, rid = args
                redemption_codes.secrets = SimpleNamespace(token_hex=lambda _n, s=salt: s)
                try:
                    issued = redemptions.request(get(User, member), get(Reward, reward_id), qty,
                                                 now=at)  # fmt: skip
                finally:
                    redemption_codes.secrets = real_secrets
                assert issued.redemption.id == rid
            else:
                rid, actor_id, reason = args
                red = get(Redemption, rid)
                actor = get(User, actor_id) if actor_id is not None else None
                if kind == "fulfil":
                    redemptions.fulfil(actor, red, redemptions.pickup_code(red), now=at)
                elif kind == "cancel":
                    redemptions.cancel(actor, red, reason, now=at)
                elif kind == "reject":
                    redemptions.reject(actor, red, reason, now=at)
                else:
                    assert redemptions.expire_hold(rid, now=at) is True
        db.session.expunge_all()


def snapshot() -> dict[str, list[tuple]]:
    out = {}
    for name in COMPARED:
        table = db.metadata.tables[name]
        order = list(table.primary_key.columns)
        out[name] = [tuple(r) for r in db.session.execute(sa.select(table).order_by(*order))]
    return out


@pytest.fixture
def replay_url(tmp_path: Any) -> str:
    if ON_POSTGRES:
        return postgres_url_for(f"replay_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    return f"sqlite:///{tmp_path / 'replay.db'}"


def test_generated_equals_service_replay(database_url: str, replay_url: str) -> None:
    app = gen.make_app(database_url)
    applied: list[tuple] = []
    with app.app_context():
        p = gen.plan(MEMBERS, ENTRIES, seed=SEED, now=NOW, redeem_rate=REDEEM_RATE,
                     streets=2, communities_per_street=2)  # fmt: skip
        info = gen.write_database(database_url, p, applied)
    with app.app_context():
        generated = snapshot()

        def one(sql: str) -> set[Any]:
            return set(db.session.scalars(sa.text(sql)))

        # The plan exercises every path, or the comparison proves little.
        assert one("SELECT kind FROM ledger_transactions") == {"earn", "hold", "redeem", "release"}
        assert one("SELECT status FROM redemptions") == {
            "fulfilled", "cancelled", "rejected", "expired", "held"
        }  # fmt: skip
        assert one("SELECT limit_applied IS NOT NULL FROM redemptions") == {True, False}
        # automatic and secretary settlements
        assert one("SELECT settled_by_id IS NULL FROM settlements") == {True, False}
        assert 0 in one("SELECT points FROM settlement_postings")  # a zero-point line
        assert one("SELECT confirmed_unrated FROM settlements") == {True, False}
        assert "return" in one("SELECT kind FROM reward_stock_changes")
        # some deliveries still awaiting ratings
        assert one("SELECT status FROM deliveries") == {"settled", "awaiting_ratings"}
        assert 0.8 * ENTRIES <= info["entries"] == len(generated["ledger_entries"]) <= 1.2 * ENTRIES
        assert info["transactions"] == len(generated["ledger_transactions"])
        # the generation was streamed: more than one window
        assert len({e[0].isocalendar()[:2] for e in applied}) > 10

        assert verifier.verify(verifier.check_names()) is None
        with atomic():
            rankings.rebuild()
        assert snapshot() == generated
        db.session.remove()
        db.engine.dispose()

    app2 = gen.make_app(replay_url)
    with app2.app_context():
        replay(replay_url, p, generated, applied)
        replayed = snapshot()
        db.session.remove()
        db.engine.dispose()
    # No filtering: the services delete a score bucket when its count falls to 0 (a
    # member moved on to a higher score), as rebuild() and the generator never write one.
    for name in COMPARED:
        assert replayed[name] == generated[name], name


def test_sqlite_writer_process_writes_everything_and_reports_its_failure(tmp_path: Any) -> None:
    """The writer process commits every row it was sent, and a failing write (here: no
    such table) is raised in the parent at ``close`` instead of hanging. It writes a
    SQLite file of its own, so it runs on either engine's suite; the replay test covers
    the PostgreSQL writer."""
    import sqlite3

    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    conn.close()
    out = gen.ProcessWriter("sqlite", str(path), sqlite3)
    for i in range(gen.WRITE_QUEUE * 2):  # more batches than the queue holds
        out.write("t", ("a", "b"), [(i * 10 + j, f"r{j}") for j in range(10)])
    out.close()
    assert out.rows == gen.WRITE_QUEUE * 20
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*), SUM(a) FROM t").fetchone() == (
            out.rows,
            sum(range(out.rows)),
        )
    conn.close()

    bad = gen.ProcessWriter("sqlite", str(path), sqlite3)
    bad.write("missing", ("a",), [(1,)])
    with pytest.raises(RuntimeError, match="no such table: missing"):
        bad.close()

    # The parent notices a dead child while it is still writing (no hang on a full
    # queue), and close() in a finally block then returns without raising again.
    dead = gen.ProcessWriter("sqlite", str(path), sqlite3)
    dead.write("missing", ("a",), [(1,)])
    with pytest.raises(RuntimeError, match="no such table: missing"):
        try:
            for _ in range(gen.WRITE_QUEUE * 10):
                dead.write("t", ("a", "b"), [(0, "x")])
        finally:
            dead.close()
    assert not dead._proc.is_alive()

    # A process whose writer died with large row lists still queued exits (it does not
    # wait at exit to flush them into a pipe nobody reads).
    script = (
        "import sqlite3, sys\n"
        "from bench import generate as gen\n"
        f"out = gen.ProcessWriter('sqlite', {str(path)!r}, sqlite3)\n"
        "out.write('missing', ('a',), [(1,)])\n"
        "try:\n"
        "    for _ in range(1000):\n"
        "        out.write('t', ('a', 'b'), [(i, 'x' * 100) for i in range(20000)])\n"
        "except RuntimeError:\n"
        "    sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(gen.__file__).parents[1], timeout=120
    )
    assert done.returncode == 3


def test_verify_checks_runs_the_chosen_checks_and_fails_on_a_violation(
    database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """``python -m bench.verify_checks`` reports each chosen check, records them, and
    exits 1 when one finds a violation (here the head's count, tampered with)."""
    import json

    from bench import verify_checks

    monkeypatch.setattr(verify_checks, "RESULTS", tmp_path)
    info = gen.generate(database_url, MEMBERS, ENTRIES, seed=SEED, now=NOW)
    assert verify_checks.main([database_url, "--checks", "head,balanced"]) == 0
    [record] = tmp_path.glob(f"verify-*-{info['entries']}.json")
    assert {k: v["result"] for k, v in json.loads(record.read_text()).items()} == {
        "head": "ok",
        "balanced": "ok",
    }
    app = gen.make_app(database_url)
    with app.app_context():
        with atomic():
            db.session.execute(sa.text("UPDATE ledger_chain_heads SET transaction_count = 1"))
        db.session.remove()
        db.engine.dispose()
    capsys.readouterr()
    assert verify_checks.main([database_url, "--checks", "head"]) == 1
    name, printed = capsys.readouterr().out.splitlines()[0].split(" ", 1)
    assert name == "head" and json.loads(printed)["result"] != "ok"
    assert json.loads(record.read_text())["head"]["result"] != "ok"
