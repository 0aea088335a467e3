"""Backup drill (issue 8, item 7): back up while writers post, restore, verify.

Writer threads keep posting secretary adjustments through the service layer (each in
its own ``atomic()``) while ``flask --app wsgi backup PATH`` runs as a separate
process. The backup is restored with ``flask --app wsgi restore PATH --yes`` into a
fresh database (SQLite: a new file; PostgreSQL: a new database), and there

* ``services.verify`` finds no violation,
* every account's cached balance equals the sum of its entries,
* the restored transactions are exactly a prefix of the source's (same ids, same
  hashes): a consistent snapshot, not a torn one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import LedgerAccount, LedgerEntry, LedgerTransaction, User
from volunteer_market.services import ledger
from volunteer_market.services import verify as verifier

from ..conftest import ON_POSTGRES, TEST_CONFIG, drop_postgres_database, postgres_url_for

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 3


def _flask(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "test-secret-key"}
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _writer(app, secretary_id: int, member_id: int, stop: threading.Event, counts, errors):
    with app.app_context():
        n = 0
        try:
            while not stop.is_set():
                secretary = db.session.get(User, secretary_id)
                member = db.session.get(User, member_id)
                with atomic():
                    ledger.adjust(secretary, member, 2 if n % 3 else -1, "备份演练")
                db.session.remove()
                n += 1
                counts.append(1)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(repr(exc))
        finally:
            db.session.remove()


def _snapshot(url: str) -> tuple[list[tuple[int, str]], list[tuple[int, int, int]]]:
    """Return ([(tx id, hash)], [(account id, cached balance, sum of entries)])."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        assert verifier.verify() is None, verifier.verify_all()
        txs = db.session.execute(
            sa.select(LedgerTransaction.id, LedgerTransaction.hash).order_by(LedgerTransaction.id)
        ).all()
        sums = (
            sa.select(LedgerEntry.account_id, sa.func.sum(LedgerEntry.amount).label("total"))
            .group_by(LedgerEntry.account_id)
            .subquery()
        )
        accounts = db.session.execute(
            sa.select(LedgerAccount.id, LedgerAccount.balance, sa.func.coalesce(sums.c.total, 0))
            .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
            .order_by(LedgerAccount.id)
        ).all()
        db.session.remove()
        db.engine.dispose()
    return [tuple(t) for t in txs], [tuple(int(x) for x in a) for a in accounts]


def test_backup_during_writes_restores_a_verified_copy(app, world, tmp_path):
    source_url = app.config["SQLALCHEMY_DATABASE_URI"]
    # some history before the writers start
    for member in (world.member_a, world.member_a2, world.member_a3):
        with atomic():
            ledger.adjust(world.secretary_a, member, 10, "期初")
    db.session.remove()

    stop = threading.Event()
    counts: list[int] = []
    errors: list[str] = []
    members = [world.member_a.id, world.member_a2.id, world.member_a3.id]
    threads = [
        threading.Thread(
            target=_writer,
            args=(app, world.secretary_a.id, members[i % len(members)], stop, counts, errors),
        )
        for i in range(WRITERS)
    ]
    for t in threads:
        t.start()
    try:
        while len(counts) < 5 and not errors and any(t.is_alive() for t in threads):
            threading.Event().wait(0.05)
        before = len(counts)
        dump = tmp_path / ("backup.dump" if ON_POSTGRES else "backup.db")
        result = _flask(source_url, "backup", str(dump))
        during = len(counts) - before
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    assert result.returncode == 0, result.stderr
    assert dump.is_file() and dump.stat().st_size > 0

    if ON_POSTGRES:
        drop_postgres_database(postgres_url_for("restored"))
        restored_url = postgres_url_for("restored")
    else:
        restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
    try:
        result = _flask(restored_url, "restore", str(dump), "--yes")
        assert result.returncode == 0, result.stderr
        restored_txs, restored_accounts = _snapshot(restored_url)
    finally:
        if ON_POSTGRES:
            drop_postgres_database(restored_url)
    source_txs, _ = _snapshot(source_url)

    assert len(restored_txs) >= 3 + before, (len(restored_txs), before)
    assert restored_txs == source_txs[: len(restored_txs)], "restored ledger is not a prefix"
    for account_id, cached, total in restored_accounts:
        assert cached == total, f"account {account_id}: cached {cached} != entries {total}"
    print(f"writes before backup {before}, during backup {during}, restored {len(restored_txs)}")
