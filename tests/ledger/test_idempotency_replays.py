"""Idempotency over HTTP (issue 8, item 6): 1,000 random keyed requests, with bursts of
8 concurrent duplicates, on SQLite (file) or PostgreSQL (``DATABASE_URL``).

A seeded random walk sends ``REQUESTS`` POSTs with an ``Idempotency-Key`` to the three
kinds of keyed point-moving endpoints -- secretary adjustments, member redemptions
(points held, stock reserved) and reversals -- as four users whose key names overlap
(keys are per user). Each request is, at random:

* a new key with a new body (201, one new ledger transaction / redemption);
* a replay of an earlier key with the identical body, its JSON keys in another order
  (the first response again, byte for byte, with ``Idempotent-Replayed: true``);
* an earlier key with a different body, or on another endpoint (422, nothing changes);

``WALKERS`` clients walk at once in threads (each its own seeded random; new keys are
claimed by one client, replays and mismatches pick any answered key), and one of them
sends every ``BURST_EVERY`` of its requests a burst: 8 threads with one new key at
once (one request does the work, seven replay it). Afterwards: each distinct (user,
key) made exactly one ledger transaction (and one redemption), with the id of its
first response; the row counts, balances and stock are exactly what the first
requests alone explain; and ``ledger verify`` passes every check.

``VM_IDEMPOTENCY_REQUESTS=N`` changes the number of requests (default 1,000, the size
of the issue); ``VM_IDEMPOTENCY_SEED`` the seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import LedgerTransaction, Redemption, Reward
from volunteer_market.services.redemptions import request_key

from ..factories import bearer, give_points, make_reward, points_of, verified
from .conftest import counts, run_threads

REQUESTS = int(os.environ.get("VM_IDEMPOTENCY_REQUESTS", "1000"))
SEED = int(os.environ.get("VM_IDEMPOTENCY_SEED", "6"))
BURST = 8
#: Thread 0 sends a burst every this many of its own requests.
BURST_EVERY = 25
#: Clients walking at once (each with its own seeded random and app contexts).
WALKERS = 4
START_POINTS = 100_000
STOCK = 100_000
COST = 10


@dataclass
class Sent:
    """The first request of one (user, key) and its response."""

    user: str
    key: str
    kind: str  # adjust | redeem | reverse
    path: str
    body: dict[str, Any]
    status: int
    data: bytes
    json: dict[str, Any]


@pytest.fixture
def app_config(app_config: dict) -> dict:
    """SQLite's busy handler is not fair: with a dozen threads on a loaded machine one
    request can wait longer than the default 30 s for the write lock."""
    return {**app_config, "SQLITE_BUSY_TIMEOUT_MS": 300_000}


def _shuffled(body: dict[str, Any], rng: random.Random) -> bytes:
    items = list(body.items())
    rng.shuffle(items)
    return json.dumps(dict(items), ensure_ascii=rng.random() < 0.5).encode()


def test_a_thousand_random_replays_post_exactly_once(app, world):
    wall, cpu = time.monotonic(), time.process_time()
    members = {
        "member_a": world.member_a,
        "member_a2": world.member_a2,
        "member_a3": world.member_a3,
    }
    for m in members.values():
        give_points(m, START_POINTS)
    reward = make_reward(world.community_a, cost=COST, stock=STOCK)
    users = {"secretary_a": world.secretary_a, **members}
    headers = {name: bearer(u) for name, u in users.items()}
    ids = {name: u.id for name, u in users.items()}
    before = counts()

    sent: dict[tuple[str, str], Sent] = {}
    order: list[tuple[str, str]] = []  # answered (user, key) pairs, replayable
    claimed: set[tuple[str, str]] = set()
    reversible: list[int] = []  # adjustment transactions not reversed yet
    reversed_ids: set[int] = set()
    tally = {"new": 0, "replay": 0, "mismatch": 0, "burst": 0}
    key_names: list[str] = []
    lock = threading.Lock()

    def post(c, user: str, key: str, path: str, raw: bytes):
        return c.post(
            path,
            data=raw,
            headers={**headers[user], "Idempotency-Key": key, "Content-Type": "application/json"},
        )

    def new_request(rng: random.Random) -> tuple[str, str, str, dict[str, Any]]:
        """Pick a kind, a user and a key name this user has not used yet (and claim it)."""
        with lock:
            roll = rng.random()
            if roll < 0.15 and reversible:
                kind, user = "reverse", "secretary_a"
            elif roll < 0.45:
                kind, user = "redeem", rng.choice(list(members))
            else:
                kind, user = "adjust", "secretary_a"
            shared = [k for k in key_names if (user, k) not in claimed]
            if shared and rng.random() < 0.3:
                key = rng.choice(shared)  # a name another user already used: keys are per user
            else:
                key = f"k-{len(key_names)}-{rng.getrandbits(32):08x}"
                key_names.append(key)
            claimed.add((user, key))
            if kind == "reverse":
                tx_id = reversible.pop(rng.randrange(len(reversible)))
                reversed_ids.add(tx_id)
        if kind == "adjust":
            target = rng.choice(list(members))
            body = {"user_id": ids[target], "amount": rng.randint(1, 50), "reason": "补录"}
            return kind, user, key, {"path": "/api/v1/adjustments", "body": body}
        if kind == "redeem":
            path = f"/api/v1/rewards/{reward.id}/redemptions"
            return kind, user, key, {"path": path, "body": {"quantity": rng.randint(1, 3)}}
        path = f"/api/v1/transactions/{tx_id}/reverse"
        return kind, user, key, {"path": path, "body": {"reason": "录错冲正"}}

    def record_first(kind, user, key, req, resp) -> Sent:
        assert resp.status_code == 201, (kind, resp.status_code, resp.get_json())
        assert "Idempotent-Replayed" not in resp.headers
        s = Sent(user, key, kind, req["path"], req["body"], 201, resp.get_data(), resp.get_json())
        with lock:
            sent[(user, key)] = s
            order.append((user, key))
            if kind == "adjust":
                reversible.append(s.json["id"])
        return s

    def pick(rng: random.Random) -> Sent:
        with lock:
            return sent[rng.choice(order)]

    def replay(c, rng: random.Random, s: Sent) -> None:
        resp = post(c, s.user, s.key, s.path, _shuffled(s.body, rng))
        assert resp.status_code == s.status, (s.key, resp.status_code, resp.get_json())
        assert resp.headers.get("Idempotent-Replayed") == "true"
        assert resp.get_data() == s.data, s.key

    def mismatch(c, rng: random.Random, s: Sent) -> None:
        if s.kind == "adjust" and rng.random() < 0.5:
            body = {**s.body, "amount": s.body["amount"] + 1}
            path = s.path
        elif s.kind == "redeem" and rng.random() < 0.5:
            body, path = {"quantity": s.body["quantity"] % 3 + 1}, s.path
        else:  # the same key on another endpoint
            other = (
                "/api/v1/adjustments"
                if s.kind != "adjust"
                else f"/api/v1/rewards/{reward.id}/redemptions"
            )
            body, path = {**s.body, "reason": "另一个请求"}, other
        resp = post(c, s.user, s.key, path, json.dumps(body).encode())
        assert resp.status_code == 422, (s.key, resp.status_code, resp.get_json())
        assert "Idempotency-Key" in resp.get_json()["errors"]

    def burst(rng: random.Random) -> None:
        kind, user, key, req = new_request(rng)
        raw = json.dumps(req["body"]).encode()
        results = run_threads(
            BURST, lambda _i: post(app.test_client(), user, key, req["path"], raw)
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        assert [r.status_code for r in results] == [201] * BURST, [r.get_json() for r in results]
        assert len({r.get_data() for r in results}) == 1  # everyone got the same response
        first = [r for r in results if "Idempotent-Replayed" not in r.headers]
        assert len(first) == 1, "exactly one of the concurrent duplicates did the work"
        record_first(kind, user, key, req, first[0])

    def walk(t: int) -> Counter[str]:
        """One client's share of the random walk; thread 0 also sends the bursts."""
        rng = random.Random(SEED * 1000 + t)
        c = app.test_client()
        mine: Counter[str] = Counter()
        budget = REQUESTS // WALKERS + (t < REQUESTS % WALKERS)
        done = 0
        next_burst = BURST_EVERY // 2
        while done < budget:
            if t == 0 and done >= next_burst and budget - done >= BURST:
                burst(rng)
                done += BURST
                next_burst += BURST_EVERY
                mine["burst"] += 1
                continue
            roll = rng.random()
            with lock:
                fresh = roll < 0.25 or not order
            if fresh:
                kind, user, key, req = new_request(rng)
                resp = post(c, user, key, req["path"], _shuffled(req["body"], rng))
                record_first(kind, user, key, req, resp)
                mine["new"] += 1
            elif roll < 0.9:
                replay(c, rng, pick(rng))
                mine["replay"] += 1
            else:
                mismatch(c, rng, pick(rng))
                mine["mismatch"] += 1
            done += 1
        return mine

    setup = time.monotonic() - wall
    results = run_threads(WALKERS, walk, timeout=600)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
    for r in results:
        for k, n in r.items():
            tally[k] += n

    assert tally["burst"] >= 1 and tally["replay"] >= REQUESTS // 3 and tally["mismatch"] >= 1
    assert len({k for _u, k in sent}) < len(sent)  # some key names were used by two users

    # exactly one transaction / redemption per (user, key), the one first answered
    db.session.rollback()
    by_kind: dict[str, list[Sent]] = {"adjust": [], "redeem": [], "reverse": []}
    for s in sent.values():
        by_kind[s.kind].append(s)
    adjust_keys = {
        f"adjust:api:u{ids[s.user]}:{hashlib.sha256(s.key.encode()).hexdigest()}": s
        for s in by_kind["adjust"]
    }
    rows = db.session.execute(
        sa.select(LedgerTransaction.idempotency_key, LedgerTransaction.id).where(
            LedgerTransaction.idempotency_key.in_(adjust_keys)
        )
    ).all()
    assert sorted(k for k, _id in rows) == sorted(adjust_keys)
    assert all(adjust_keys[k].json["id"] == tx_id for k, tx_id in rows)
    redeem_keys = {request_key(ids[s.user], s.key): s for s in by_kind["redeem"]}
    rows = db.session.execute(
        sa.select(Redemption.idempotency_key, Redemption.id, Redemption.hold_transaction_id).where(
            Redemption.idempotency_key.in_(redeem_keys)
        )
    ).all()
    assert sorted(k for k, _i, _h in rows) == sorted(redeem_keys)
    assert all(redeem_keys[k].json["id"] == rid for k, rid, _h in rows)
    reversals = dict(
        db.session.execute(
            sa.select(LedgerTransaction.reverses_id, LedgerTransaction.id).where(
                LedgerTransaction.reverses_id.is_not(None)
            )
        ).all()
    )
    assert set(reversals) == reversed_ids
    assert sorted(reversals.values()) == sorted(s.json["id"] for s in by_kind["reverse"])

    after = counts()
    n_adjust, n_redeem, n_reverse = (len(by_kind[k]) for k in ("adjust", "redeem", "reverse"))
    assert after["ledger_transactions"] - before["ledger_transactions"] == (
        n_adjust + n_redeem + n_reverse
    )
    assert after["idempotency_keys"] - before["idempotency_keys"] == len(sent)
    assert db.session.execute(sa.select(sa.func.count(Redemption.id))).scalar_one() == n_redeem

    # balances and stock are what the first requests alone explain
    reversed_amounts = {s.json["id"]: s.body["amount"] for s in by_kind["adjust"]}
    for name, m in members.items():
        added = sum(s.body["amount"] for s in by_kind["adjust"] if s.body["user_id"] == m.id)
        taken_back = sum(
            reversed_amounts[tx]
            for tx in reversed_ids
            if adjust_owner(by_kind["adjust"], tx) == m.id
        )
        held = COST * sum(s.body["quantity"] for s in by_kind["redeem"] if s.user == name)
        assert points_of(m) == {
            "available": START_POINTS + added - taken_back - held,
            "held": held,
            "earned_total": 0,
        }, name
    quantities = sum(s.body["quantity"] for s in by_kind["redeem"])
    db.session.rollback()
    assert db.session.get(Reward, reward.id).stock == STOCK - quantities

    verified()
    print(  # noqa: T201 - the figures of the run (pytest -s)
        f"\nidempotency[{db.engine.dialect.name}]: {REQUESTS} requests: {tally['new']} new, "
        f"{tally['replay']} replays, {tally['mismatch']} mismatched (422), {tally['burst']} "
        f"bursts of {BURST}; {len(sent)} keys -> {n_adjust} adjustments, {n_redeem} "
        f"redemptions, {n_reverse} reversals, one transaction each; "
        f"{time.monotonic() - wall:.1f} s wall (setup {setup:.1f} s), "
        f"{time.process_time() - cpu:.1f} s CPU"
    )


def adjust_owner(adjustments: list[Sent], tx_id: int) -> int:
    """Return the member whose wallet the adjustment ``tx_id`` changed."""
    return next(s.body["user_id"] for s in adjustments if s.json["id"] == tx_id)
