"""Writer processes for the crash-safety test (``tests/security/test_crash.py``).

Run as ``python -m tests.security.crash_writer ZYGOTE_CONFIG_JSON``: a *zygote* that
imports the application and builds the app once, then forks one writer per
``spawn SLOT`` line read on stdin and prints the writer's pid. Forking a ready
app takes milliseconds where a fresh interpreter takes seconds, so the test can
kill and restart writers many times within its budget. The zygote reaps its
children itself (SIGCHLD ignored); it exits on EOF.

A writer posts continuously through the service layer, one ``atomic()`` per
operation (what a gunicorn worker does): secretary-style adjustments (+/-),
earns of a delivery inserted in the same transaction, reversals, redemption
requests (points held, stock reserved) and their cancel/fulfil (points released
or redeemed, stock returned); a new writer's first operation is the adjust, earn or
redeem confirmed least so far, so every path is exercised however short the writers
live. It keeps its phase in ``state`` (a shared mmap, one byte per slot: waiting for
the lock, holding it mid-transaction, committed), so the test knows where a kill
landed. Before a transaction it appends the operation (its *intent*) to
``intent-SLOT.jsonl``;
after the commit it appends the ledger key and transaction id to
``confirmed-SLOT.jsonl`` (one ``write`` each). A writer started in a slot whose
last keyed intent was never confirmed retries it first with the same key, as a
client retries after a crash: exactly-once means the retry replays or posts, never
both.

Kept free of pytest imports.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import signal
import sys
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

#: State bytes in the shared map: forked, not posting yet / waiting for the write lock
#: (SQLite) or the ledger head row lock (PostgreSQL) / holding it, mid-transaction /
#: committed, between transactions.
STARTING, WAITING, IN_TX, BETWEEN = 0, 3, 1, 2
#: How many slots the state map holds; byte ``COMMITTED + slot`` is set to 1 once the
#: slot's writer committed its first new (not retried) operation.
MAX_SLOTS = 16
COMMITTED = MAX_SLOTS
MAP_SIZE = 2 * MAX_SLOTS
APPLICATION_NAME = "vm_crash_writer"


def _append(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line with a single ``write`` (O_APPEND)."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Return the complete lines of a JSONL file (a torn last line is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            out.append(json.loads(line))
    return out


class Writer:
    def __init__(self, cfg: dict[str, Any], slot: int, incarnation: int, state: mmap.mmap):
        self.cfg = cfg
        self.slot = slot
        self.state = state
        self.dir = Path(cfg["dir"])
        self.intents = self.dir / f"intent-{slot}.jsonl"
        self.confirmed = self.dir / f"confirmed-{slot}.jsonl"
        self.rng = random.Random(cfg["seed"] * 100_003 + slot * 1009 + incarnation)
        self.tag = f"s{slot}i{incarnation}"
        self.seq = 0
        self.mine: list[int] = []  # transactions this slot posted (reversal candidates)

    def set_state(self, value: int) -> None:
        self.state[self.slot] = value

    # --- operations (each returns the LedgerTransaction it posted or replayed) ------------

    def op(self, intent: dict[str, Any]) -> Any:
        from volunteer_market.extensions import db
        from volunteer_market.models import (
            Area,
            Delivery,
            LedgerTransaction,
            Redemption,
            RedemptionStatus,
            Reward,
            User,
            utcnow,
        )
        from volunteer_market.services import ledger, redemptions
        from volunteer_market.services.errors import NotFound

        cfg = self.cfg
        kind = intent["op"]
        if kind == "adjust":
            member = db.session.get(User, intent["member"])
            community = db.session.get(Area, cfg["community"])
            return ledger.adjust(
                None,
                member,
                intent["amount"],
                "崩溃测试",
                community,
                idempotency_key=intent["key"],
            )
        if kind == "earn":
            now = utcnow()
            delivery = Delivery(
                project_id=cfg["project"],
                community_id=cfg["community"],
                recorded_by_id=cfg["members"][0],
                started_at=now - timedelta(hours=3),
                ended_at=now - timedelta(hours=1),
                rating_deadline=now + timedelta(days=7),
            )
            db.session.add(delivery)
            db.session.flush()
            return ledger.earn(
                None,
                member_id=intent["member"],
                community_id=cfg["community"],
                delivery_id=delivery.id,
                points=intent["points"],
                minutes=60,
                policy_id=None,
                idempotency_key=intent["key"],
            )
        if kind == "reverse":
            tx = db.session.get(LedgerTransaction, intent["tx"])
            return ledger.reverse(None, tx, "崩溃冲正")
        if kind == "redeem":
            member = db.session.get(User, intent["member"])
            reward = db.session.get(Reward, cfg["reward"])
            issued = redemptions.request(member, reward, 1, idempotency_key=intent["key"])
            return db.session.get(LedgerTransaction, issued.redemption.hold_transaction_id)
        if kind == "close":
            import sqlalchemy as sa

            redemption = db.session.execute(
                sa.select(Redemption)
                .where(
                    Redemption.status == RedemptionStatus.HELD,
                    Redemption.member_id.in_(cfg["members"]),
                )
                .order_by(sa.func.random())
                .limit(1)
            ).scalar_one_or_none()
            if redemption is None:
                return None
            if intent["how"] == "cancel":
                member = db.session.get(User, redemption.member_id)
                closed = redemptions.cancel(member, redemption)
            else:
                secretary = db.session.get(User, cfg["secretary"])
                code = redemptions.pickup_code(redemption)
                closed = redemptions.fulfil(secretary, redemption, code)
            return db.session.get(LedgerTransaction, closed.final_transaction_id)
        raise NotFound(kind)  # pragma: no cover

    def next_intent(self, kind: str | None = None) -> dict[str, Any]:
        """Return the next operation: a random one, or one of ``kind``."""
        r = self.rng
        self.seq += 1
        key = f"crash:{self.tag}:{self.seq}"
        member = r.choice(self.cfg["members"])
        roll = {None: r.random(), "adjust": 0, "earn": 0.5, "redeem": 0.8}[kind]
        if roll < 0.25:
            return {"op": "adjust", "member": member, "amount": r.randint(1, 20), "key": key}
        if roll < 0.35:
            return {"op": "adjust", "member": member, "amount": -r.randint(1, 15), "key": key}
        if roll < 0.60:
            return {"op": "earn", "member": member, "points": r.randint(1, 30), "key": key}
        if roll < 0.70 and self.mine:
            return {"op": "reverse", "tx": r.choice(self.mine), "key": key}
        if roll < 0.85:
            return {"op": "redeem", "member": member, "key": key}
        return {"op": "close", "how": r.choice(["cancel", "fulfil"]), "key": key}

    def run_one(self, intent: dict[str, Any]) -> None:
        from volunteer_market.database import atomic
        from volunteer_market.extensions import db
        from volunteer_market.services import ledger
        from volunteer_market.services.errors import Conflict

        _append(self.intents, intent)
        record = None
        self.set_state(WAITING)
        try:
            with atomic():
                # the first lock of every posting (lock order); from here on this
                # process is the one writer inside a transaction
                ledger.lock_all_heads()
                self.set_state(IN_TX)
                tx = self.op(intent)
                if tx is not None:
                    record = {
                        "key": tx.idempotency_key,
                        "tx": tx.id,
                        "op": intent["op"],
                        "intent": intent["key"],
                    }
            # committed: from here on a kill loses only the confirmation, never the posting
            self.set_state(BETWEEN)
            if not intent.get("retry"):
                self.state[COMMITTED + self.slot] = 1
            if record is not None:
                _append(self.confirmed, record)
                if intent["op"] in ("adjust", "earn"):
                    self.mine.append(record["tx"])
        except Conflict:  # 409s: balance, already reversed, stock, not held any more
            self.set_state(BETWEEN)
        finally:
            db.session.remove()

    def run(self) -> None:
        # A crash between an intent and its confirmation: retry it with the same key.
        intents = read_jsonl(self.intents)
        confirmed = read_jsonl(self.confirmed)
        self.mine = [c["tx"] for c in confirmed if c["op"] in ("adjust", "earn")]
        if intents and intents[-1]["op"] in ("adjust", "redeem"):
            done = {c["intent"] for c in confirmed}
            last = intents[-1]
            if last["key"] not in done:
                self.run_one({**last, "retry": True})
        # The first new operation is of the main kind confirmed least so far (over all
        # slots), so every path is exercised however short the writers live.
        confirmed_ops = Counter(
            c["op"] for path in self.dir.glob("confirmed-*.jsonl") for c in read_jsonl(path)
        )
        kinds = ["adjust", "earn", "redeem"]
        self.rng.shuffle(kinds)
        self.run_one(self.next_intent(min(kinds, key=lambda k: confirmed_ops[k])))
        while True:
            self.run_one(self.next_intent())


def _child(cfg: dict[str, Any], app: Any, slot: int, incarnation: int) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    fd = os.open(cfg["state"], os.O_RDWR)
    state = mmap.mmap(fd, MAP_SIZE)
    os.close(fd)
    try:
        from volunteer_market.extensions import db

        with app.app_context():
            db.engine.dispose(close=False)  # never share the zygote's connections
            Writer(cfg, slot, incarnation, state).run()
    except BaseException:  # noqa: BLE001 - reported to the test through a file
        Path(cfg["dir"], f"error-{slot}-{incarnation}.txt").write_text(traceback.format_exc())
        os._exit(1)
    os._exit(0)  # pragma: no cover - writers run until killed


class _WarmedUp(Exception):
    """Raised to roll the warm-up transaction back."""


def warm_up(cfg: dict[str, Any], app: Any) -> None:
    """Run every operation once in a transaction that is rolled back, so that forked
    writers inherit compiled statements and loaded code, then close the connections."""
    from volunteer_market.database import atomic
    from volunteer_market.extensions import db
    from volunteer_market.services import ledger

    with app.app_context():
        w = Writer(cfg, MAX_SLOTS - 1, 0, bytearray(MAP_SIZE))  # type: ignore[arg-type]
        member = cfg["members"][0]
        try:
            with atomic():
                ledger.lock_all_heads()
                tx = w.op({"op": "adjust", "member": member, "amount": 50, "key": "warm:1"})
                w.op({"op": "reverse", "tx": tx.id, "key": "warm:2"})
                w.op({"op": "adjust", "member": member, "amount": -1, "key": "warm:3"})
                w.op({"op": "earn", "member": member, "points": 5, "key": "warm:4"})
                for n, how in enumerate(("cancel", "fulfil")):
                    w.op({"op": "redeem", "member": member, "key": f"warm:r{n}"})
                    w.op({"op": "close", "how": how, "key": f"warm:c{n}"})
                raise _WarmedUp
        except _WarmedUp:
            pass
        db.session.remove()
        db.engine.dispose()


def zygote(cfg: dict[str, Any]) -> None:
    from volunteer_market import create_app

    config = dict(cfg["app_config"])
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgres"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "connect_args": {"application_name": APPLICATION_NAME}
        }
    app = create_app(config)
    warm_up(cfg, app)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    print("ready", flush=True)
    for incarnation, line in enumerate(sys.stdin, start=1):
        cmd, slot = line.split()
        assert cmd == "spawn"
        pid = os.fork()
        if pid == 0:
            _child(cfg, app, int(slot), incarnation)
        print(pid, flush=True)


if __name__ == "__main__":
    zygote(json.loads(sys.argv[1]))
