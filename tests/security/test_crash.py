"""Crash safety (issue 8, item 5): writers SIGKILLed at random moments, then integrity,
every ledger invariant, no dangling locks, and new writes.

``SLOTS`` writer processes post continuously through the service layer against one
database -- a SQLite *file*, or PostgreSQL with ``DATABASE_URL`` -- doing adjustments
(+/-), earns (with a delivery inserted in the same transaction), reversals,
redemption requests (points held, stock reserved) and cancels/fulfilments (points
released or redeemed, stock returned); see ``tests/security/crash_writer.py``. The
test SIGKILLs a writer at a random moment after its first commit -- every other
kill is aimed inside a transaction instead: once the writer holds the write lock
(SQLite) / the ledger head row lock (PostgreSQL), after a random delay of up to the
longest recent transaction, re-aimed at the next transaction if this one committed
first, so kills land anywhere from the first statement to the commit -- and starts
a new one in its slot, which first retries the
interrupted keyed operation with the same key. Afterwards:

* SQLite: ``PRAGMA integrity_check`` is ``ok`` and ``PRAGMA foreign_key_check`` is
  empty; PostgreSQL: no backend of a killed writer is left (``pg_stat_activity``),
  so no lock or open transaction dangles;
* the write lock / the ledger head row is free at once (``BEGIN IMMEDIATE`` with no
  busy timeout; ``SELECT ... FOR UPDATE NOWAIT``);
* ``ledger verify`` finds no violation of any registered invariant (ledger, hash
  chain, redemptions, reward stock, settlements, ranking rollups);
* every posting a writer confirmed (it appends the key after the commit) exists
  exactly once with the confirmed id, the ledger holds at least as many
  transactions as were confirmed, and no operation key posted twice;
* a new adjustment and a new redemption succeed, and the ledger still verifies.

Sizes: CI kills writers ``20`` times; the full size of the issue (``120`` kills)
runs with ``VM_FULL_CRASH=1``::

    VM_FULL_CRASH=1 pytest -q -s -p no:cacheprovider tests/security/test_crash.py
    VM_FULL_CRASH=1 DATABASE_URL=postgresql://... pytest -q -s tests/security/test_crash.py

``VM_CRASH_KILLS=N`` sets the number of kills directly. The test prints its figures
(kills, where they landed, postings confirmed) with ``-s``.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from volunteer_market.database import sqlite_module
from volunteer_market.extensions import db
from volunteer_market.models import LedgerTransaction, Redemption
from volunteer_market.services import redemptions
from volunteer_market.services import verify as verifier

from ..factories import (
    give_points,
    insert_approved_project,
    make_reward,
    points_of,
    redeem,
    verified,
)
from .crash_writer import (
    APPLICATION_NAME,
    BETWEEN,
    COMMITTED,
    IN_TX,
    MAP_SIZE,
    STARTING,
    WAITING,
    read_jsonl,
)

FULL = os.environ.get("VM_FULL_CRASH") == "1"
KILLS = int(os.environ.get("VM_CRASH_KILLS", "120" if FULL else "20"))
SLOTS = 3
#: A random kill lands this long (at most) after the writer started posting.
RANDOM_DELAY = 0.6 if FULL else 0.2
#: An aimed kill lands at most this long after the writer took the lock until
#: transaction lengths have been observed (then: the longest of the recent ones).
AIMED_SPAN = 0.05
ROOT = Path(__file__).resolve().parents[2]
SEED = 20261127


class Zygote:
    """The writer factory process (``crash_writer.zygote``)."""

    def __init__(self, cfg: dict) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tests.security.crash_writer", json.dumps(cfg)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert self._line(120) == "ready"
        except BaseException:
            self.close()
            raise

    def _line(self, timeout: float) -> str:
        ready, _w, _x = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the writer zygote did not answer"
        line = self.proc.stdout.readline()
        assert line, f"the writer zygote died (exit {self.proc.poll()})"
        return line.strip()

    def spawn(self, slot: int) -> int:
        self.proc.stdin.write(f"spawn {slot}\n")
        self.proc.stdin.flush()
        return int(self._line(30))

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - only on a hang
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def _gone(pid: int, timeout: float = 20) -> None:
    """Wait until ``pid`` has exited (the zygote reaps it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"writer {pid} survived SIGKILL"
        time.sleep(0.002)


def _errors(work: Path) -> list[str]:
    return [p.read_text() for p in sorted(work.glob("error-*.txt"))]


def _kill_writers(zygote: Zygote, state: mmap.mmap, work: Path, kills: int) -> dict:
    """Run writers in ``SLOTS`` slots, SIGKILLing and restarting them ``kills`` times."""
    rng = random.Random(SEED)
    alive: dict[int, dict] = {}
    landed: Counter[str] = Counter()
    names = {STARTING: "starting", WAITING: "waiting", IN_TX: "in_tx", BETWEEN: "between"}
    done = 0
    spawned = 0
    startup: list[float] = []
    durations: list[float] = []  # observed transaction lengths (lock held to commit)

    def kill(slot: int) -> None:
        nonlocal done
        writer = alive.pop(slot)
        where = state[slot]
        os.kill(writer["pid"], signal.SIGKILL)
        landed[names[where]] += 1
        done += 1
        _gone(writer["pid"])

    try:
        while done < kills:
            errors = _errors(work)
            assert not errors, errors[0]
            for slot in range(SLOTS):
                now = time.monotonic()
                if slot not in alive:
                    state[slot] = STARTING
                    state[COMMITTED + slot] = 0
                    alive[slot] = {"pid": zygote.spawn(slot), "since": now, "at": None}
                    alive[slot]["aimed"] = spawned % 2 == 1
                    spawned += 1
                    continue
                writer = alive[slot]
                current = state[slot]
                if current == IN_TX and writer.get("tx_since") is None:
                    writer["tx_since"] = now
                elif current != IN_TX and writer.get("tx_since") is not None:
                    durations.append(now - writer.pop("tx_since"))
                if "first" not in writer and state[COMMITTED + slot]:
                    writer["first"] = now - writer["since"]
                    startup.append(writer["first"])
                if writer["at"] is None:
                    assert now - writer["since"] < 60, "a writer never got the lock"
                    if not writer["aimed"] and not state[COMMITTED + slot]:
                        continue
                    if writer["aimed"]:
                        if current != IN_TX:
                            continue
                        # anywhere in the transaction, the commit included
                        span = max(durations[-30:], default=AIMED_SPAN)
                        writer["at"] = now + rng.uniform(0, span)
                    else:
                        writer["at"] = now + rng.uniform(0, RANDOM_DELAY)
                if now >= writer["at"] and done < kills:
                    if writer["aimed"] and current != IN_TX:
                        writer["at"] = None  # committed meanwhile: aim at the next one
                        continue
                    kill(slot)
            time.sleep(0.0005)
    finally:
        for slot in list(alive):
            kill(slot)
    errors = _errors(work)
    assert not errors, errors[0]
    return {
        "kills": done,
        "spawned": spawned,
        "landed": dict(landed),
        "first_commit": sum(startup) / max(len(startup), 1),
    }


def _confirmed(work: Path) -> list[dict]:
    return [r for slot in range(SLOTS) for r in read_jsonl(work / f"confirmed-{slot}.jsonl")]


def _intents(work: Path) -> list[dict]:
    return [r for slot in range(SLOTS) for r in read_jsonl(work / f"intent-{slot}.jsonl")]


def _check_storage(database_url: str) -> str:
    """The engine's own consistency checks, and the write lock is free at once; return
    a note on what was left behind."""
    if db.engine.dialect.name == "sqlite":
        path = sa.make_url(database_url).database
        conn = sqlite_module().connect(path, timeout=0, isolation_level=None)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("BEGIN IMMEDIATE")  # 'database is locked' if a lock dangled
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return "integrity_check ok"
    start = time.monotonic()
    deadline = start + 20
    seen: list | None = None
    while True:
        left = db.session.execute(
            sa.text(
                "SELECT pid, state FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = :n"
            ),
            {"n": APPLICATION_NAME},
        ).all()
        db.session.rollback()
        if seen is None:
            seen = left
        if not left:
            break
        assert time.monotonic() < deadline, f"backends of killed writers left: {left}"
        time.sleep(0.05)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT id FROM ledger_head FOR UPDATE NOWAIT").all()
        conn.exec_driver_sql("SELECT chain_key FROM ledger_chain_heads FOR UPDATE NOWAIT").all()
        conn.exec_driver_sql("SELECT id FROM rewards FOR UPDATE NOWAIT").all()
        conn.rollback()
    return (
        f"{len(seen)} writer backends left right after the kills "
        f"({Counter(state for _pid, state in seen)}), gone after {time.monotonic() - start:.2f} s"
    )


def test_sigkilled_writers_leave_a_consistent_database(app, world, database_url, tmp_path):
    started = time.monotonic()
    members = [world.member_a, world.member_a2, world.member_a3]
    for m in members:
        give_points(m, 300)
    reward = make_reward(world.community_a, cost=10, stock=1_000_000)
    project_id = insert_approved_project(
        world.community_a.id, world.member_a.id, title="崩溃测试项目"
    )
    work = tmp_path / "crash"
    work.mkdir()
    state_path = work / "state"
    state_path.write_bytes(bytes(MAP_SIZE))
    cfg = {
        "dir": str(work),
        "state": str(state_path),
        "seed": SEED,
        "community": world.community_a.id,
        "members": [m.id for m in members],
        "secretary": world.secretary_a.id,
        "reward": reward.id,
        "project": project_id,
        "app_config": {
            **{k: v for k, v in current_app.config.items() if k in _CHILD_KEYS},
            "SQLALCHEMY_DATABASE_URI": db.engine.url.render_as_string(hide_password=False),
            "SQLITE_BUSY_TIMEOUT_MS": 600_000,
        },
    }
    before = db.session.execute(sa.select(sa.func.count(LedgerTransaction.id))).scalar_one()
    last_before = db.session.execute(sa.select(sa.func.max(LedgerTransaction.id))).scalar_one()
    db.session.remove()

    fd = os.open(state_path, os.O_RDWR)
    state = mmap.mmap(fd, MAP_SIZE)
    os.close(fd)
    zygote = Zygote(cfg)
    try:
        figures = _kill_writers(zygote, state, work, KILLS)
    finally:
        zygote.close()
        state.close()
    killed_at = time.monotonic()

    storage = _check_storage(database_url)

    verified()

    confirmed = _confirmed(work)
    intents = _intents(work)
    keys = [c["key"] for c in confirmed]
    rows = dict(
        db.session.execute(
            sa.select(LedgerTransaction.idempotency_key, LedgerTransaction.id).where(
                LedgerTransaction.idempotency_key.in_(keys)
            )
        ).all()
    )
    missing = [c for c in confirmed if rows.get(c["key"]) != c["tx"]]
    assert not missing, f"confirmed postings lost: {missing[:5]}"
    once = Counter(
        db.session.execute(
            sa.select(LedgerTransaction.idempotency_key).where(
                LedgerTransaction.idempotency_key.in_(keys)
            )
        ).scalars()
    )
    assert set(once.values()) <= {1} and len(once) == len(set(keys))
    total = db.session.execute(sa.select(sa.func.count(LedgerTransaction.id))).scalar_one()
    distinct_confirmed = len(set(keys))
    assert total - before >= distinct_confirmed
    # keyed operations never posted twice: one transaction per adjust/earn key, one
    # redemption per redeem key, however often a crashed writer retried them
    op_keys = [i["key"] for i in intents if i["op"] in ("adjust", "earn")]
    twice = db.session.execute(
        sa.select(LedgerTransaction.idempotency_key)
        .where(LedgerTransaction.idempotency_key.in_(op_keys))
        .group_by(LedgerTransaction.idempotency_key)
        .having(sa.func.count() > 1)
    ).all()
    assert twice == []
    redeem_keys = {
        redemptions.request_key(i["member"], i["key"]) for i in intents if i["op"] == "redeem"
    }
    per_key = Counter(
        db.session.execute(
            sa.select(Redemption.idempotency_key).where(Redemption.idempotency_key.in_(redeem_keys))
        ).scalars()
    )
    assert all(n == 1 for n in per_key.values()), per_key.most_common(3)
    retried = [i for i in intents if i.get("retry")]

    assert figures["kills"] >= KILLS
    inside = figures["landed"].get("in_tx", 0)
    assert inside >= KILLS // 3, figures  # kills really land mid-transaction
    assert distinct_confirmed >= KILLS // 2, "the writers hardly posted"
    ops = Counter(c["op"] for c in confirmed)
    posted = Counter(
        kind.value
        for kind in db.session.execute(
            sa.select(LedgerTransaction.kind).where(LedgerTransaction.id > last_before)
        ).scalars()
    )
    assert posted["adjust"] and posted["earn"] and posted["hold"], posted  # several paths

    # the database accepts new writes, and still verifies
    stock_before = db.session.get(type(reward), reward.id).stock
    wallet = points_of(world.member_a)["available"]
    give_points(world.member_a, 50)
    issued = redeem(world.member_a, db.session.get(type(reward), reward.id))
    db.session.rollback()
    assert issued.redemption.id is not None
    assert points_of(world.member_a)["available"] == wallet + 50 - 10
    assert db.session.get(type(reward), reward.id).stock == stock_before - 1
    assert (
        db.session.execute(sa.select(sa.func.count(LedgerTransaction.id))).scalar_one() == total + 2
    )
    verified()

    print(  # noqa: T201 - the figures of the run (pytest -s)
        f"\ncrash[{db.engine.dialect.name}]: {figures['kills']} SIGKILLs over "
        f"{figures['spawned']} writer processes ({SLOTS} at a time), landed "
        f"{figures['landed']}; {distinct_confirmed} postings confirmed "
        f"({dict(ops)}), {total - before} transactions posted ({dict(posted)}), "
        f"{len(retried)} "
        f"interrupted operations retried; kill phase {killed_at - started:.1f} s, "
        f"checks {time.monotonic() - killed_at:.1f} s, mean start to first commit "
        f"{figures['first_commit']:.2f} s; {storage}; verify: all "
        f"{len(verifier.check_names())} checks pass"
    )


#: Config keys the writers' app copies from the test app.
_CHILD_KEYS = (
    "TESTING",
    "VM_ENV",
    "PASSWORD_HASH_MEMORY_KIB",
    "PASSWORD_HASH_TIME_COST",
    "RATELIMIT_STORAGE_URI",
    "SERVER_NAME",
    "SECRET_KEY",
)
