"""Real-process races (``multiprocessing`` 'spawn'; every process builds its own app
against the same database, as gunicorn workers do), on SQLite files and PostgreSQL.

The default run uses 4 processes x 20 attempts. The full size of issue 6
(16 x 20 = 320 attempts) runs with ``VM_FULL_RACE=1``::

    VM_FULL_RACE=1 pytest -q -s tests/rewards/test_races.py
    VM_FULL_RACE=1 DATABASE_URL=postgresql://... pytest -q -s tests/rewards/test_races.py

Each test prints its figures (visible with ``-s``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    AccountKind,
    LedgerTransaction,
    Redemption,
    RedemptionStatus,
    TransactionKind,
)
from volunteer_market.services import ledger, points_policy

from ..factories import give_points, make_reward, points_of, redeem
from .conftest import earn, verified
from .race import run_workers

FULL = os.environ.get("VM_FULL_RACE") == "1"
PROCESSES = 16 if FULL else 4
ATTEMPTS = 20
ROOT = Path(__file__).resolve().parents[2]


def _url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _stock(reward_id: int) -> int | None:
    db.session.rollback()
    return db.session.execute(
        sa.text("SELECT stock FROM rewards WHERE id = :id"), {"id": reward_id}
    ).scalar_one()


def _count(sql: str, **params) -> int:
    db.session.rollback()
    return db.session.execute(sa.text(sql), params).scalar_one()


def _engine() -> str:
    return db.engine.dialect.name


def test_stock_race_exactly_50_succeed(world):
    give_points(world.member_a, 1000)
    reward = make_reward(world.community_a, cost=10, stock=50)
    member_id, reward_id = world.member_a.id, reward.id
    db.session.remove()
    results = run_workers(
        _url(), _secret(), "redeem_many", [(member_id, reward_id, ATTEMPTS)] * PROCESSES
    )
    ok = sum(r["ok"] for r in results)
    stock_409 = sum(r["stock"] for r in results)
    other = sum(r["balance"] + r["limit"] + r["other409"] for r in results)
    attempts = PROCESSES * ATTEMPTS
    print(
        f"\n[race {_engine()}] {PROCESSES}x{ATTEMPTS}={attempts} attempts: "
        f"{ok} succeeded, {stock_409} refused 409 (stock), {other} other; "
        f"per process ok={[r['ok'] for r in results]}"
    )
    assert ok == 50
    assert stock_409 == attempts - 50 and other == 0
    assert _stock(reward_id) == 0
    assert points_of(world.member_a) == {"available": 500, "held": 500, "earned_total": 0}
    assert _count("SELECT count(*) FROM redemptions") == 50
    assert _count("SELECT count(*) FROM reward_stock_changes WHERE kind = 'reserve'") == 50
    assert _count("SELECT count(*) FROM ledger_transactions WHERE kind = 'hold'") == 50
    assert len({i for r in results for i in r["ids"]}) == 50
    verified()


def test_balance_race_never_overdraws(world):
    """The wallet binds instead of the stock: 95 points, cost 10 -> exactly 9 succeed."""
    give_points(world.member_a, 95)
    reward = make_reward(world.community_a, cost=10, stock=1000)
    db.session.remove()
    results = run_workers(
        _url(), _secret(), "redeem_many", [(world.member_a.id, reward.id, 5)] * PROCESSES
    )
    ok = sum(r["ok"] for r in results)
    assert ok == 9
    assert sum(r["balance"] for r in results) == PROCESSES * 5 - 9
    assert points_of(world.member_a) == {"available": 5, "held": 90, "earned_total": 0}
    assert _stock(reward.id) == 991
    verified()


def test_naive_read_then_write_oversells(world):
    """The control: the same race against a read-then-write implementation defined in
    the test (race.naive_redeem_many) loses updates -- proof the race is real."""
    give_points(world.member_a, 1000)
    reward = make_reward(world.community_a, cost=10, stock=50)
    db.session.rollback()
    with atomic():
        wallet_id = ledger.account_for_member(world.member_a.id, AccountKind.MEMBER_AVAILABLE).id
    db.session.remove()
    procs = max(PROCESSES, 4)
    results = run_workers(
        _url(),
        _secret(),
        "naive_redeem_many",
        [(_url(), wallet_id, reward.id, ATTEMPTS, 10, 0.01)] * procs,
    )
    ok = sum(results)
    stock = _stock(reward.id)
    balance = points_of(world.member_a)["available"]
    print(
        f"\n[naive {_engine()}] {procs}x{ATTEMPTS} attempts: {ok} 'succeeded' with stock 50; "
        f"stock now {stock} (should be {50 - ok}), wallet {balance} (should be {1000 - 10 * ok})"
    )
    assert ok > 50, "the naive version did not oversell: the race has no teeth"
    assert stock + ok > 50  # lost stock updates
    assert balance + 10 * ok > 1000  # lost balance updates: points spent twice


def test_per_member_limit_under_concurrency(world):
    give_points(world.member_a, 1000)
    give_points(world.member_a2, 1000)
    reward = make_reward(world.community_a, cost=10, per_member_limit=3, limit_period="month")
    half = max(PROCESSES // 2, 2)
    args = [(world.member_a.id, reward.id, ATTEMPTS)] * half + [
        (world.member_a2.id, reward.id, ATTEMPTS)
    ] * half
    db.session.remove()
    results = run_workers(_url(), _secret(), "redeem_many", args)
    by_member = [sum(r["ok"] for r in results[:half]), sum(r["ok"] for r in results[half:])]
    print(
        f"\n[limit {_engine()}] {2 * half}x{ATTEMPTS} attempts, limit 3: ok per member {by_member}"
    )
    assert by_member == [3, 3]
    assert sum(r["limit"] for r in results) == 2 * half * ATTEMPTS - 6
    assert points_of(world.member_a)["held"] == 30
    verified()


def test_cancel_fulfil_expire_race_has_one_winner_each(world):
    give_points(world.member_a, 1000)
    reward = make_reward(world.community_a, cost=10, stock=50)
    start = datetime.now(UTC) - timedelta(days=30)
    items = []
    for _ in range(12):
        issued = redeem(world.member_a, reward, now=start)
        items.append((issued.redemption.id, issued.pickup_code))
    later = datetime.now(UTC).isoformat()  # every hold has expired by now
    db.session.remove()
    won = run_workers(
        _url(),
        _secret(),
        "close_many",
        [  # different orders, so that each process wins some and most are contested
            ("cancel", world.member_a.id, items, later),
            ("fulfil", world.secretary_a.id, items[::-1], later),
            ("expire", 0, items[6:] + items[:6], later),
        ],
    )
    cancelled, fulfilled, expired = (set(w) for w in won)
    print(
        f"\n[close {_engine()}] 12 redemptions: cancelled {len(cancelled)}, "
        f"fulfilled {len(fulfilled)}, expired {len(expired)}"
    )
    ids = {i for i, _c in items}
    assert cancelled | fulfilled | expired == ids
    assert not (cancelled & fulfilled or cancelled & expired or fulfilled & expired)
    db.session.rollback()
    status = dict(db.session.execute(sa.select(Redemption.id, Redemption.status)).all())
    assert {i for i, s in status.items() if s == RedemptionStatus.CANCELLED} == cancelled
    assert {i for i, s in status.items() if s == RedemptionStatus.FULFILLED} == fulfilled
    assert {i for i, s in status.items() if s == RedemptionStatus.EXPIRED} == expired
    finals = db.session.execute(
        sa.select(LedgerTransaction.redemption_id, sa.func.count())
        .where(LedgerTransaction.kind.in_([TransactionKind.RELEASE, TransactionKind.REDEEM]))
        .group_by(LedgerTransaction.redemption_id)
    ).all()
    assert sorted(finals) == sorted((i, 1) for i in ids)
    assert points_of(world.member_a) == {
        "available": 1000 - 10 * len(fulfilled),
        "held": 0,
        "earned_total": 0,
    }
    assert _stock(reward.id) == 50 - len(fulfilled)
    verified()


def test_expire_command_twice_at_once_is_idempotent(world):
    give_points(world.member_a, 1000)
    reward = make_reward(world.community_a, cost=10, stock=100)
    old = datetime.now(UTC) - timedelta(days=60)
    for _ in range(20):
        redeem(world.member_a, reward, now=old)
    redeem(world.member_a, reward)  # not due
    now = datetime.now(UTC).isoformat()
    db.session.remove()
    done = run_workers(_url(), _secret(), "expire_holds_like_cli", [(now,)] * 2)
    print(f"\n[expire {_engine()}] two runs at once expired {done}")
    assert sum(done) == 20
    assert _count("SELECT count(*) FROM redemptions WHERE status = 'expired'") == 20
    assert _count("SELECT count(*) FROM ledger_transactions WHERE kind = 'release'") == 20
    assert _stock(reward.id) == 99
    assert points_of(world.member_a) == {"available": 990, "held": 10, "earned_total": 0}
    verified()


def test_expire_cli_processes_twice_at_once(world, tmp_path):
    """The real command, ``flask --app wsgi redemptions expire``, started twice together."""
    give_points(world.member_a, 1000)
    reward = make_reward(world.community_a, cost=10, stock=20)
    old = datetime.now(UTC) - timedelta(days=60)
    for _ in range(10):
        redeem(world.member_a, reward, now=old)
    db.session.remove()
    env = {
        **os.environ,
        "DATABASE_URL": _url(),
        "SECRET_KEY": _secret(),
        "PASSWORD_HASH_MEMORY_KIB": "8",
        "PASSWORD_HASH_TIME_COST": "1",
    }
    flask = [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "redemptions", "expire"]
    procs = [
        subprocess.Popen(
            flask, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    expired = [int(out.split("Expired ", 1)[1].split(" ", 1)[0]) for out, _err in outs]
    assert sum(expired) == 10, outs
    assert _count("SELECT count(*) FROM redemptions WHERE status = 'expired'") == 10
    assert _stock(reward.id) == 20
    verified()


def test_wallet_expiry_twice_at_once_posts_once(world):
    with atomic():
        points_policy.new_policy_version(None, world.community_a, expiry_rule="end_of_next_year")
    for member in (world.member_a, world.member_a2, world.member_a3):
        earn(member, world.community_a, 40)
    # The earns are dated now: as of 1 January two years on, they are past their deadline.
    as_of = date(datetime.now(UTC).year + 2, 1, 1).isoformat()
    db.session.remove()
    posted = run_workers(_url(), _secret(), "expire_wallets_like_cli", [(as_of,)] * 2)
    assert sum(posted) == 3
    for member in (world.member_a, world.member_a2, world.member_a3):
        assert points_of(member) == {"available": 0, "held": 0, "earned_total": 40}
    assert _count("SELECT count(*) FROM ledger_transactions WHERE kind = 'expire'") == 3
    verified()
