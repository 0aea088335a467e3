"""Workers for the real-process race tests (``multiprocessing`` 'spawn' context).

Each process builds its own app against the same database URL, waits at a barrier
so they all start together, then calls the service layer inside ``atomic()`` --
exactly what concurrent gunicorn workers do. Kept free of pytest imports so that
spawned children import it cheaply.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from datetime import date, datetime
from typing import Any

#: Configuration of every child app (the parent passes its SECRET_KEY so pickup
#: codes derive identically).
CHILD_CONFIG = {
    "TESTING": True,
    "VM_ENV": "testing",
    "PASSWORD_HASH_MEMORY_KIB": 8,
    "PASSWORD_HASH_TIME_COST": 1,
    "RATELIMIT_STORAGE_URI": "memory://",
    "SERVER_NAME": None,
    # SQLite's busy handler is not fair: with 16 writers on a small, loaded machine one
    # process can wait longer than the default 30 s for the write lock ("database is
    # locked"). The races test correctness, not latency, so the children wait longer.
    "SQLITE_BUSY_TIMEOUT_MS": 600_000,
}


def run_workers(
    url: str,
    secret_key: str,
    target: str,
    args_per_worker: list[tuple],
    *,
    timeout: float = 600,
) -> list[Any]:
    """Run ``target(*args)`` (a function of this module) in one spawned process per
    args tuple, released together; return the results in order.

    :raises AssertionError: a worker raised or hung (its traceback is included).
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(args_per_worker))
    queue = ctx.Queue()
    procs = [
        ctx.Process(
            target=_entry,
            args=(url, secret_key, target, i, args, barrier, queue),
            daemon=True,
        )
        for i, args in enumerate(args_per_worker)
    ]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while len(results) + len(errors) < len(procs):
            remaining = deadline - time.monotonic()
            assert remaining > 0, "race workers timed out"
            index, status, value = queue.get(timeout=remaining)
            if status == "ok":
                results[index] = value
            else:
                errors.append(f"worker {index}: {value}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover - only on a hang
                p.kill()
                p.join()
        queue.close()
    assert not errors, "\n".join(errors)
    return [results[i] for i in range(len(procs))]


def _entry(
    url: str,
    secret_key: str,
    target: str,
    index: int,
    args: tuple,
    barrier: Any,
    queue: Any,
) -> None:
    try:
        from volunteer_market import create_app
        from volunteer_market.extensions import db

        app = create_app({**CHILD_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret_key})
        with app.app_context():
            fn = globals()[target]
            barrier.wait(120)
            result = fn(*args)
            db.session.remove()
            db.engine.dispose()
        queue.put((index, "ok", result))
    except BaseException:  # noqa: BLE001 - reported to the parent
        queue.put((index, "error", traceback.format_exc()))


# --- workers --------------------------------------------------------------------------------


def redeem_many(member_id: int, reward_id: int, attempts: int, quantity: int = 1) -> dict:
    """Request ``attempts`` redemptions, one transaction each; count the outcomes."""
    from volunteer_market.database import atomic
    from volunteer_market.extensions import db
    from volunteer_market.models import Reward, User
    from volunteer_market.services import redemptions
    from volunteer_market.services.errors import Conflict, InsufficientPoints

    out = {"ok": 0, "stock": 0, "balance": 0, "limit": 0, "other409": 0, "ids": []}
    for _ in range(attempts):
        try:
            with atomic():
                member = db.session.get(User, member_id)
                reward = db.session.get(Reward, reward_id)
                issued = redemptions.request(member, reward, quantity)
                out["ids"].append(issued.redemption.id)
            out["ok"] += 1
        except redemptions.OutOfStock:
            out["stock"] += 1
        except redemptions.LimitReached:
            out["limit"] += 1
        except InsufficientPoints:
            out["balance"] += 1
        except Conflict:
            out["other409"] += 1
        db.session.remove()
    return out


def naive_redeem_many(
    url: str, account_id: int, reward_id: int, attempts: int, cost: int, pause: float
) -> int:
    """The deliberately naive implementation: read balance and stock, check in Python,
    pause, write the computed values back. Returns how many "succeeded".

    SQLite: the standard library's ``sqlite3`` with its default (legacy) transaction
    handling -- the SELECTs run outside any transaction and the UPDATEs open a plain
    deferred BEGIN -- no ``BEGIN IMMEDIATE``. PostgreSQL: READ COMMITTED without
    ``FOR UPDATE``.
    """
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split("sqlite:///", 1)[1]
        conn = sqlite3.connect(path, timeout=60)
        ok = 0
        try:
            for _ in range(attempts):
                balance = conn.execute(
                    "SELECT balance FROM ledger_accounts WHERE id = ?", (account_id,)
                ).fetchone()[0]
                stock = conn.execute(
                    "SELECT stock FROM rewards WHERE id = ?", (reward_id,)
                ).fetchone()[0]
                if balance < cost or stock < 1:
                    continue
                time.sleep(pause)
                conn.execute("UPDATE rewards SET stock = ? WHERE id = ?", (stock - 1, reward_id))
                conn.execute(
                    "UPDATE ledger_accounts SET balance = ? WHERE id = ?",
                    (balance - cost, account_id),
                )
                conn.commit()
                ok += 1
        finally:
            conn.close()
        return ok

    import sqlalchemy as sa

    from volunteer_market.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(url))
    ok = 0
    try:
        for _ in range(attempts):
            with engine.begin() as conn:
                balance = conn.execute(
                    sa.text("SELECT balance FROM ledger_accounts WHERE id = :id"),
                    {"id": account_id},
                ).scalar_one()
                stock = conn.execute(
                    sa.text("SELECT stock FROM rewards WHERE id = :id"), {"id": reward_id}
                ).scalar_one()
                if balance < cost or stock < 1:
                    continue
                time.sleep(pause)
                conn.execute(
                    sa.text("UPDATE rewards SET stock = :s WHERE id = :id"),
                    {"s": stock - 1, "id": reward_id},
                )
                conn.execute(
                    sa.text("UPDATE ledger_accounts SET balance = :b WHERE id = :id"),
                    {"b": balance - cost, "id": account_id},
                )
            ok += 1
    finally:
        engine.dispose()
    return ok


def close_many(
    action: str, actor_id: int, items: list[tuple[int, str]], now_iso: str, pause: float = 0.02
) -> list[int]:
    """Try ``action`` (cancel / fulfil / expire) on every redemption in order, pausing
    between them like a real client (SQLite's busy handler is not fair: without a
    pause one process drains the list); return the ids this process won."""
    from volunteer_market.database import atomic
    from volunteer_market.extensions import db
    from volunteer_market.models import Redemption, User
    from volunteer_market.services import redemptions
    from volunteer_market.services.errors import Conflict

    now = datetime.fromisoformat(now_iso)
    won: list[int] = []
    for redemption_id, code in items:
        try:
            with atomic():
                if action == "expire":
                    if redemptions.expire_hold(redemption_id, now):
                        won.append(redemption_id)
                    continue
                actor = db.session.get(User, actor_id)
                redemption = db.session.get(Redemption, redemption_id)
                if action == "cancel":
                    redemptions.cancel(actor, redemption, now=now)
                else:
                    redemptions.fulfil(actor, redemption, code, now=now)
            won.append(redemption_id)
        except Conflict:
            pass
        db.session.remove()
        time.sleep(pause)
    return won


def expire_holds_like_cli(now_iso: str) -> int:
    """What ``flask redemptions expire`` does: list due holds, one transaction each."""
    from volunteer_market.database import atomic
    from volunteer_market.extensions import db
    from volunteer_market.services import redemptions

    now = datetime.fromisoformat(now_iso)
    due = redemptions.due_holds(now)
    db.session.rollback()
    done = 0
    for redemption_id in due:
        with atomic():
            done += int(redemptions.expire_hold(redemption_id, now))
    return done


def expire_wallets_like_cli(as_of: str) -> int:
    """What ``flask wallet expire`` does: one transaction per member."""
    from volunteer_market.database import atomic
    from volunteer_market.extensions import db
    from volunteer_market.services import wallet_expiry

    day = date.fromisoformat(as_of)
    members = wallet_expiry.candidates()
    db.session.rollback()
    posted = 0
    for member_id in members:
        with atomic():
            posted += int(wallet_expiry.expire_member(member_id, day) is not None)
    return posted
