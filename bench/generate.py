"""Build a city-scale benchmark database in bulk.

    python -m bench.generate --url URL --members N --entries M [--residents R] [--verify]

Creates the schema (``db.create_all``; existing tables are dropped first) and loads a
whole city district: the area tree (1 district, 10 streets, 100 communities, 2 grids
each), one officer, one secretary per community, ``N`` members (Zipf-skewed activity),
``R`` residents, 5 approved projects per community, the default points policy, and
deliveries with participants and beneficiaries spread over the last two years. Then
it *simulates* in time order what the services would do with these events:

* residents rate the deliveries they received (``services.ratings.rate``; most rate,
  scores skewed towards 5); the last beneficiary's rating settles the delivery
  automatically, otherwise the community's secretary settles it after the rating
  window (``services.settlement.settle``, ``confirm_unrated`` when nobody rated);
  deliveries whose window is still open stay ``awaiting_ratings``;
* settlements post one ``earn`` per participant with positive points
  (``points_policy.points_for``), with the settlement's reason, policy id and actor;
* members redeem rewards (``services.redemptions.request``: balance, stock and
  per-member limit checked as the service does; refused requests leave nothing),
  and the redemptions are fulfilled, cancelled, rejected, expired or still held,
  with their ``hold``/``redeem``/``release`` transactions and stock changes.

Every row is what the services would have written for the same events at the same
times (ids, ledger keys, hash chain, account creation order, rollups): the events are
returned by :func:`plan` and ``tests/bench/test_generate.py`` replays them through the
services into a second database and compares the two table by table. Not generated:
the audit log and notifications the services also write, needs, replies.

Bulk paths: PostgreSQL ``COPY`` (secondary indexes dropped during the load and
re-created afterwards), SQLite ``executemany`` with ``synchronous=OFF`` /
``journal_mode=MEMORY``.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import heapq
import itertools
import json
import math
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.extensions import db
from volunteer_market.models import GENESIS_HASH
from volunteer_market.services import points_policy as pp
from volunteer_market.services import rankings
from volunteer_market.services.settlement import _decimal, _reason

RESULTS = Path(__file__).parent / "results"
STREETS = 10
COMMUNITIES_PER_STREET = 10
GRIDS_PER_COMMUNITY = 2
PROJECTS_PER_COMMUNITY = 5
#: Zipf exponent of member activity (rank r gets weight 1 / r**s).
ZIPF_S = 0.9
BATCH = 50_000
YEARS = 2
#: Key of the pickup codes (``PICKUP_CODE_KEY``) in the generated databases.
PICKUP_KEY = "bench-pickup-code-key"
#: Rating scores and their weights (realistic skew: mostly 5s, a few poor ones).
SCORES = (5, 4, 3, 2, 1)
SCORE_WEIGHTS = (58, 24, 9, 5, 4)
#: Share of beneficiaries who rate at all (the rest leave it to the secretary).
RATE_SHARE = 0.85
COMMENTS = (None, None, None, "很好", "非常感谢！", "准时、耐心", "下次还请你们来", "一般")
#: Redemption requests per earn (each has a hold and usually a redeem/release).
REDEEM_RATE = 0.08
#: Outcomes of a redemption and their weights.
OUTCOMES = (("fulfil", 70), ("cancel", 10), ("reject", 3), ("expire", 17))
CANCEL_REASONS = (None, "不需要了", "选错了")
REJECT_REASONS = ("库存登记有误", "不符合兑换条件")


class Progress:
    """A plain-text progress bar on stderr: percentage, rows and rows/s."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.start = self.last = time.perf_counter()

    def add(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= 0.5 or self.done >= self.total:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        pct = min(100.0, 100 * self.done / self.total)
        rate = self.done / max(now - self.start, 1e-9)
        bar = "#" * int(pct / 4)
        sys.stderr.write(
            f"\r{self.label:<22} [{bar:<25}] {pct:5.1f}% {self.done:>11,} rows {rate:>10,.0f}/s"
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.done < self.total or self.last == self.start:
            self._draw(time.perf_counter())
        sys.stderr.write("\n")


def make_app(url: str) -> Any:
    return create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "TESTING": False, "PICKUP_CODE_KEY": PICKUP_KEY}
    )


# --- the plan: base rows and the events, in time order -----------------------------


@dataclass
class Plan:
    """The base data set and the service events to apply to it (see :func:`plan`)."""

    now: datetime
    start: datetime
    since: datetime
    areas: list[tuple] = field(default_factory=list)
    communities: list[int] = field(default_factory=list)
    ancestors: dict[int, tuple[int, ...]] = field(default_factory=dict)
    users: list[tuple] = field(default_factory=list)
    grants: list[tuple] = field(default_factory=list)
    grid_of: dict[int, int] = field(default_factory=dict)
    revoked_at: dict[int, datetime] = field(default_factory=dict)
    secretary_of: dict[int, int] = field(default_factory=dict)
    community_of: dict[int, int] = field(default_factory=dict)
    projects: list[tuple] = field(default_factory=list)
    title_of: dict[int, str] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    #: Rewards as ``services.rewards.create_reward`` keyword arguments, in id order.
    rewards: list[dict[str, Any]] = field(default_factory=list)
    #: ``(id, project_id, community_id, recorded_by_id, started_at, ended_at,
    #: rating_deadline, created_at)``
    deliveries: list[tuple] = field(default_factory=list)
    #: ``(id, delivery_id, user_id, minutes)``
    participants: list[tuple] = field(default_factory=list)
    #: ``(id, delivery_id, user_id, code_hash, token_hash)``
    beneficiaries: list[tuple] = field(default_factory=list)
    #: ``(at, seq, kind, *args)`` sorted: ``rate`` (delivery, resident, score,
    #: comment), ``settle`` (delivery, secretary), ``request`` (member, reward index,
    #: quantity, outcome, outcome delay in seconds, reason, pickup-code salt).
    events: list[tuple] = field(default_factory=list)


def plan(members: int, entries: int, residents: int | None = None, seed: int = 7,
         now: datetime | None = None, redeem_rate: float = REDEEM_RATE,
         streets: int = STREETS, communities_per_street: int = COMMUNITIES_PER_STREET,
         ) -> Plan:  # fmt: skip
    """Draw the data set: base rows and the events (ratings, settlements by the
    secretary, redemption requests with their later outcome). Activity grows linearly
    over the two years (density of deliveries and requests proportional to time)."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=365 * YEARS)
    since = start - timedelta(days=30)
    p = Plan(now=now, start=start, since=since)
    residents = residents if residents is not None else max(20, members)

    # areas
    nid = itertools.count(1)
    d = next(nid)
    p.areas.append((d, "汉阳区", "district", None, f"/{d}/", 0))
    grids_of: dict[int, list[int]] = {}
    for s in range(streets):
        sid = next(nid)
        p.areas.append((sid, f"街道{s + 1}", "street", d, f"/{d}/{sid}/", 1))
        for c in range(communities_per_street):
            cid = next(nid)
            p.communities.append(cid)
            p.areas.append((cid, f"社区{s + 1}-{c + 1}", "community", sid, f"/{d}/{sid}/{cid}/", 2))
            grids_of[cid] = []
            for g in range(GRIDS_PER_COMMUNITY):
                gid = next(nid)
                grids_of[cid].append(gid)
                p.areas.append((gid, f"网格{g + 1}", "grid", cid, f"/{d}/{sid}/{cid}/{gid}/", 3))
    p.ancestors = {a[0]: tuple(int(x) for x in a[4].strip("/").split("/")) for a in p.areas}
    comms = p.communities

    # users and grants: officer, one secretary per community, members, residents
    officer = 1
    gid = itertools.count(1)
    p.users.append((officer, "officer", "!bench", "区管理员", True, 1, since))
    p.grants.append((next(gid), officer, "officer", d, since, None))
    for i, cid in enumerate(comms):
        u = 2 + i
        p.secretary_of[cid] = u
        p.users.append((u, f"s{cid}", "!bench", f"书记{cid}", True, 1, since))
        p.grants.append((next(gid), u, "secretary", cid, since, None))
    first_member = 2 + len(comms)
    member_ids = list(range(first_member, first_member + members))
    resident_ids = list(range(first_member + members, first_member + members + residents))
    suspended = set(rng.sample(member_ids, max(1, members // 1000)))
    ended = set(rng.sample(member_ids, max(1, members // 500))) - suspended
    for u in member_ids:
        cid = p.community_of[u] = comms[rng.randrange(len(comms))]
        p.users.append((u, f"m{u}", "!bench", f"党员{u}", u not in suspended, 1, since))
        revoked = now - timedelta(days=10) if u in ended else None
        if revoked is not None:
            p.revoked_at[u] = revoked
        p.grants.append((next(gid), u, "member", cid, since, revoked))
        if rng.random() < 0.5:
            grid = p.grid_of[u] = rng.choice(grids_of[cid])
            p.grants.append((next(gid), u, "member", grid, since, revoked))
    residents_of: dict[int, list[int]] = {c: [] for c in comms}
    for u in resident_ids:
        cid = comms[rng.randrange(len(comms))]
        residents_of[cid].append(u)
        p.users.append((u, f"r{u}", "!bench", f"居民{u}", True, 1, since))
        p.grants.append((next(gid), u, "resident", cid, since, None))
    for cid in comms:  # every community has someone to serve
        if not residents_of[cid]:
            residents_of[cid].append(resident_ids[rng.randrange(len(resident_ids))])

    # projects, policy, rewards
    projects_of: dict[int, list[int]] = {}
    pid = itertools.count(1)
    for cid in comms:
        projects_of[cid] = []
        for _k in range(PROJECTS_PER_COMMUNITY):
            n = next(pid)
            projects_of[cid].append(n)
            p.title_of[n] = f"项目{n}"
            p.projects.append(
                (n, cid, p.secretary_of[cid], f"项目{n}", "基准测试项目", "elderly", "event",
                 30, 1, 120, "[]", "[]", "approved", since, since)
            )  # fmt: skip
    p.policy = {"id": 1, "community_id": None, "version": 1, **pp.default_policy_values(),
                "created_at": since}  # fmt: skip
    policy = SimpleNamespace(**p.policy)
    window = timedelta(days=policy.rating_window_days)

    n_earns = max(1, int(entries / 2 * 1.03 / (1 + redeem_rate)))
    n_requests = int(n_earns * redeem_rate)
    p.rewards.append(
        {
            "area_id": d,
            "name": "区级：电影票",
            "cost": 100,
            "stock": max(10, n_requests // 15),
            "sponsor": "共建影院",
        }
    )
    p.rewards.append(
        {
            "area_id": d,
            "name": "区级：公交卡充值",
            "cost": 20,
            "per_member_limit": 4,
            "limit_period": "month",
        }
    )
    p.rewards.append({"area_id": d, "name": "区级：体检套餐", "cost": 200})
    for cid in comms:
        p.rewards.append({"area_id": cid, "name": f"社区{cid}：粮油", "cost": 30,
                              "stock": max(3, n_requests // 300), "per_member_limit": 2,
                              "limit_period": "month", "sponsor": "中百超市"})  # fmt: skip
        p.rewards.append({"area_id": cid, "name": f"社区{cid}：理发券", "cost": 50})

    # deliveries: Zipf-skewed lead member, 1-3 participants, 1-3 beneficiaries
    weights = [1 / (r**ZIPF_S) for r in range(1, members + 1)]
    order = member_ids[:]
    rng.shuffle(order)  # activity rank is independent of id and community
    cum = list(itertools.accumulate(weights))
    by_comm: dict[int, list[int]] = {c: [] for c in comms}
    for u in member_ids:
        by_comm[p.community_of[u]].append(u)
    span = (now - start).total_seconds() - 4 * 3600
    events: list[tuple] = []
    seq = itertools.count()
    did = part_id = ben_id = 0
    planned = 0
    bar = Progress("plan deliveries", n_earns)
    while planned < n_earns:
        lead = order[bisect.bisect_left(cum, rng.random() * cum[-1])]
        cid = p.community_of[lead]
        team = {lead}
        for _ in range(rng.choice((0, 0, 1, 2))):
            team.add(rng.choice(by_comm[cid]))
        did += 1
        began = start + timedelta(seconds=int(math.sqrt(rng.random()) * span))
        minutes = rng.choice((30, 60, 60, 90, 120, 120, 180, 240))
        ended_at = began + timedelta(minutes=minutes)
        deadline = ended_at + window
        recorder = p.secretary_of[cid]
        p.deliveries.append((did, rng.choice(projects_of[cid]), cid, recorder, began, ended_at,
                             deadline, ended_at))  # fmt: skip
        for u in sorted(team):
            part_id += 1
            p.participants.append((part_id, did, u, minutes))
        pool = residents_of[cid]
        n_ben = min(len(pool), rng.choice((1, 1, 1, 2, 2, 3)))
        rated = 0
        for r in rng.sample(pool, n_ben):
            ben_id += 1
            h = hashlib.sha256(f"bench:{ben_id}".encode()).hexdigest()
            p.beneficiaries.append((ben_id, did, r, h, h))
            if rng.random() < RATE_SHARE:
                at = ended_at + timedelta(seconds=int(rng.expovariate(1 / 86400)) + 60)
                if at < deadline and at <= now:
                    score = rng.choices(SCORES, SCORE_WEIGHTS)[0]
                    events.append((at, next(seq), "rate", did, r, score, rng.choice(COMMENTS)))
                    rated += 1
        if rated < n_ben:
            at = deadline + timedelta(seconds=int(rng.random() * 3 * 86400))
            if at <= now:
                events.append((at, next(seq), "settle", did, recorder))
        planned += len(team)
        bar.add(len(team))
    bar.finish()

    # redemption requests (refused ones are dropped by the simulation)
    redeemers = [u for u in order if u not in suspended and u not in ended]
    rcum = list(itertools.accumulate(1 / (r**ZIPF_S) for r in range(1, len(redeemers) + 1)))
    n_district = 3
    outcome_names = [o for o, _w in OUTCOMES]
    outcome_weights = [w for _o, w in OUTCOMES]
    total_span = (now - start).total_seconds()
    comm_index = {c: i for i, c in enumerate(comms)}
    for _ in range(n_requests if redeemers else 0):
        u = redeemers[bisect.bisect_left(rcum, rng.random() * rcum[-1])]
        cidx = comm_index[p.community_of[u]]
        choice = rng.randrange(n_district + 2)
        reward_idx = choice if choice < n_district else n_district + 2 * cidx + choice - n_district
        at = start + timedelta(seconds=int(math.sqrt(rng.random()) * total_span))
        qty = 1 if rng.random() < 0.9 else 2
        outcome = rng.choices(outcome_names, outcome_weights)[0]
        if outcome == "fulfil":
            delay = rng.randrange(1800, 10 * 86400)
            reason = None
        elif outcome == "cancel":
            delay = rng.randrange(60, 5 * 86400)
            reason = rng.choice(CANCEL_REASONS)
        elif outcome == "reject":
            delay = rng.randrange(3600, 3 * 86400)
            reason = rng.choice(REJECT_REASONS)
        else:
            delay = rng.randrange(0, 3600)  # after expires_at: the hourly cron
            reason = None
        salt = f"{rng.getrandbits(128):032x}"
        events.append((at, next(seq), "request", u, reward_idx, qty, outcome, delay, reason, salt))
    events.sort()
    p.events = events
    return p


# --- the simulation: what the services write for these events -----------------------

_KINDS_MEMBER = ("member_available", "member_held")


@dataclass
class Result:
    """Rows of every table the events change, in id order, and the applied events."""

    accounts: dict[tuple, list] = field(default_factory=dict)
    transactions: list[tuple] = field(default_factory=list)
    entries: list[tuple] = field(default_factory=list)
    ratings: list[tuple] = field(default_factory=list)
    code_used: dict[tuple[int, int], datetime] = field(default_factory=dict)
    settled: set[int] = field(default_factory=set)
    settlements: list[tuple] = field(default_factory=list)
    postings: list[tuple] = field(default_factory=list)
    rewards: list[dict[str, Any]] = field(default_factory=list)
    redemptions: dict[int, list] = field(default_factory=dict)
    stock_changes: list[tuple] = field(default_factory=list)
    #: ``(at, member, community, delivery, project, minutes, points)`` per earn.
    earns: list[tuple] = field(default_factory=list)
    head: tuple | None = None
    #: Each reward's stock at the end (index = reward id - 1; None: unlimited).
    final_stock: list[int | None] = field(default_factory=list)
    #: What the services were asked, in order: ``(at, kind, *args)``.
    applied: list[tuple] = field(default_factory=list)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _j(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def simulate(p: Plan, derive_code: Any, code_digest: Any) -> Result:
    """Apply the plan's events as the services would (see the module docstring).

    ``derive_code``/``code_digest`` are ``services.redemptions``' (they need the app).
    """
    res = Result()
    policy = SimpleNamespace(**p.policy)
    accounts = res.accounts
    tx_rows = res.transactions
    entry_rows = res.entries
    sha = hashlib.sha256
    state = {"prev": GENESIS_HASH, "head_created": None}
    deliveries = {dv[0]: dv for dv in p.deliveries}
    parts_of: dict[int, list[tuple[int, int]]] = {}
    for _pid, dlv, u, minutes in p.participants:
        parts_of.setdefault(dlv, []).append((u, minutes))
    bens_of: dict[int, int] = {}
    for _bid, dlv, _u, _h, _t in p.beneficiaries:
        bens_of[dlv] = bens_of.get(dlv, 0) + 1
    scores: dict[int, list[int]] = {}
    points_cache: dict[tuple, tuple] = {}
    points_of: dict[tuple, int] = {}

    last_iso: list = [None, ""]
    last_reason: list = [None, "null"]

    def iso_of(at: datetime) -> str:  # the participants of a settlement share one instant
        if at is not last_iso[0]:
            last_iso[0], last_iso[1] = at, _iso(at)
        return last_iso[1]

    def reason_json(reason: str | None) -> str:  # ... and one reason
        if reason is not last_reason[0]:
            last_reason[0], last_reason[1] = reason, _j(reason)
        return last_reason[1]

    def account(kind: str, user: int | None, community: int | None, at: datetime) -> list:
        key = (kind, user, community)
        acc = accounts.get(key)
        if acc is None:
            if state["head_created"] is None:
                state["head_created"] = at
            owner = f"{kind}:u{user or ''}:c{community or ''}"
            acc = accounts[key] = [len(accounts) + 1, kind, user, community, owner, 0, 0, at]
        return acc

    def post(kind: str, key: str, member: int, community: int, delivery: int | None,
             rid: int | None, minutes: int | None, policy_id: int | None, actor: int | None,
             reason: str | None, at: datetime, legs: list) -> int:  # fmt: skip
        legs.sort(key=lambda leg: leg[0][0])
        for acc, amount in legs:
            acc[5] += amount
            if kind == "earn" and acc[1] == "member_available":
                acc[6] += amount
            assert acc[1] not in _KINDS_MEMBER or acc[5] >= 0
        tid = len(tx_rows) + 1
        prev = state["prev"]
        (a1, m1), (a2, m2) = ((acc[0], amount) for acc, amount in legs)
        # services.ledger.hash_content's canonical JSON (sorted keys, compact)
        raw = (
            f'{{"actor_id":{_j(actor)},"community_id":{community},"created_at":"{iso_of(at)}",'
            f'"delivery_id":{_j(delivery)},"entries":[[{a1},{m1}],[{a2},{m2}]],'
            f'"idempotency_key":"{key}","kind":"{kind}","member_id":{member},'
            f'"minutes":{_j(minutes)},"policy_id":{_j(policy_id)},"prev_hash":"{prev}",'
            f'"reason":{reason_json(reason)},"redemption_id":{_j(rid)},"reverses_id":null,"v":1}}'
        )
        digest = sha(raw.encode()).hexdigest()
        tx_rows.append((tid, kind, key, member, community, delivery, rid, minutes, policy_id,
                        actor, reason, at, prev, digest))  # fmt: skip
        n = len(entry_rows)
        entry_rows.append((n + 1, tid, a1, m1, at))
        entry_rows.append((n + 2, tid, a2, m2, at))
        state["prev"] = digest
        return tid

    def settle(dlv: int, actor: int | None, at: datetime) -> None:
        _d, project, cid, _rec, _s, _e, _dl, _c = deliveries[dlv]
        given = scores.get(dlv, [])
        ck = (len(given), sum(given))
        if ck not in points_cache:
            avg = pp.average_score(given)
            factor = pp.multiplier(avg, policy)
            points_cache[ck] = (avg, factor, _decimal(avg) if avg is not None else None,
                                _decimal(factor))  # fmt: skip
        avg, _factor, avg_dec, mult_dec = points_cache[ck]
        sid = len(res.settlements) + 1
        s = SimpleNamespace(ratings_count=len(given), average_score=avg_dec, multiplier=mult_dec,
                            policy_version=policy.version)  # fmt: skip
        reason = _reason(SimpleNamespace(id=dlv), p.title_of[project], s, policy.base_rate)
        total_p = total_m = 0
        for u, minutes in sorted(parts_of[dlv]):
            pk = (minutes, ck)
            points = points_of.get(pk)
            if points is None:
                points = points_of[pk] = pp.points_for(minutes, avg, policy)
            tid = None
            if points > 0:
                wallet = account("member_available", u, None, at)
                source = account("issuance", None, cid, at)
                tid = post("earn", f"earn:d{dlv}:u{u}", u, cid, dlv, None, minutes, policy.id,
                           actor, reason, at, [(source, -points), (wallet, points)])  # fmt: skip
                res.earns.append((at, u, cid, dlv, project, minutes, points))
            counted = min(minutes, policy.hours_cap_minutes)  # pp.counted_minutes
            res.postings.append((len(res.postings) + 1, sid, dlv, u, minutes, counted, points, tid))
            total_p += points
            total_m += minutes
        res.settlements.append((sid, dlv, cid, policy.id, policy.version, len(given), sum(given),
                                avg_dec, mult_dec, not given, total_p, total_m, actor, at))  # fmt: skip
        res.settled.add(dlv)

    # rewards (created by the CLI at ``since``: initial stock changes)
    stock: list[int | None] = []
    for i, r in enumerate(p.rewards, start=1):
        res.rewards.append({**r, "id": i, "created_at": p.since})
        stock.append(r.get("stock"))
        res.stock_changes.append((len(res.stock_changes) + 1, i, "initial", None, None,
                                  r.get("stock"), None, None, None, p.since))  # fmt: skip
    held_digests: set[str] = set()
    used: dict[tuple[int, int], list] = {}  # (member, reward) -> redemptions (mutable rows)
    zone = rankings._zone(rankings.DEFAULT_TIMEZONE)
    hold_delta = timedelta(days=policy.redemption_hold_days)

    def request(at: datetime, u: int, ridx: int, qty: int, outcome: str, delay: int,
                reason: str | None, salt: str, later: list) -> None:  # fmt: skip
        reward = res.rewards[ridx]
        cid = p.community_of[u]
        total = reward["cost"] * qty
        wallet = accounts.get(("member_available", u, None))
        if wallet is None or wallet[5] < total:
            return  # InsufficientPoints: rolled back
        left = stock[ridx]
        if left is not None and left < qty:
            return  # OutOfStock
        limit = reward.get("per_member_limit")
        pkey = None
        if limit is not None:
            local = at.astimezone(zone)
            begin = datetime(local.year, local.month, 1, tzinfo=zone)
            mine = used.setdefault((u, ridx), [])
            taken = sum(r[4] for r in mine if r[17] >= begin and r[8] in ("held", "fulfilled"))
            if taken + qty > limit:
                return  # LimitReached
            pkey = f"{local.year:04d}-{local.month:02d}"
        rid = len(res.redemptions) + 1
        held = account("member_held", u, None, at)
        hold = post("hold", f"hold:r{rid}", u, cid, None, rid, None, None, u, None, at,
                    [(wallet, -total), (held, total)])  # fmt: skip
        if left is not None:
            stock[ridx] = left - qty
        while True:
            code = derive_code(rid, salt)
            digest = code_digest(code)
            if digest not in held_digests:
                break
            salt = sha(salt.encode()).hexdigest()[:32]
        held_digests.add(digest)
        # id reward member community qty cost total status reserved limit pkey digest salt
        # hold final key expires reason(16)... laid out as the table's columns below
        row = [rid, ridx + 1, u, cid, qty, reward["cost"], total, None, "held",
               left is not None, limit, pkey, digest, salt, hold, None, at + hold_delta, at,
               None, None, at, code]  # fmt: skip
        res.redemptions[rid] = row
        if limit is not None:
            used[(u, ridx)].append(row)
        if left is not None:
            res.stock_changes.append((len(res.stock_changes) + 1, ridx + 1, "reserve", -qty,
                                      left, left - qty, rid, u, None, at))  # fmt: skip
        res.applied.append((at, "request", u, ridx + 1, qty, salt, rid))
        when = (at + hold_delta if outcome == "expire" else at) + timedelta(seconds=delay)
        if outcome == "fulfil" and when >= at + hold_delta:
            return
        if when <= p.now:
            heapq.heappush(later, (when, next(seq), outcome, rid, reason))

    def close(at: datetime, outcome: str, rid: int, reason: str | None) -> None:
        row = res.redemptions[rid]
        u, cid, total, ridx = row[2], row[3], row[6], row[1] - 1
        secretary = p.secretary_of[cid]
        actor = {"fulfil": secretary, "reject": secretary, "cancel": u, "expire": None}[outcome]
        held = account("member_held", u, None, at)
        if outcome == "fulfil":
            counter = account("redemption_sink", None, cid, at)
            kind, key, status = "redeem", f"redeem:r{rid}", "fulfilled"
        else:
            counter = account("member_available", u, None, at)
            kind, key = "release", f"release:r{rid}"
            status = {"cancel": "cancelled", "reject": "rejected", "expire": "expired"}[outcome]
        tid = post(kind, key, u, cid, None, rid, None, None, actor, reason, at,
                   [(held, -total), (counter, total)])  # fmt: skip
        row[8], row[15], row[18], row[19], row[20] = status, tid, reason, actor, at
        held_digests.discard(row[12])
        if outcome != "fulfil" and row[9]:
            left = stock[ridx]
            stock[ridx] = left + row[4]
            res.stock_changes.append((len(res.stock_changes) + 1, ridx + 1, "return", row[4],
                                      left, left + row[4], rid, actor, None, at))  # fmt: skip
        res.applied.append((at, outcome, rid, actor, reason))

    later: list[tuple] = []
    seq = itertools.count(len(p.events))
    bar = Progress("simulate events", len(p.events))
    events = iter(p.events)
    nxt = next(events, None)
    done = 0
    while nxt is not None or later:
        if later and (nxt is None or later[0][:2] < nxt[:2]):
            at, _s, outcome, rid, reason = heapq.heappop(later)
            close(at, outcome, rid, reason)
            continue
        ev = nxt
        nxt = next(events, None)
        at, kind = ev[0], ev[2]
        if kind == "rate":
            _at, _s, _k, dlv, r, score, comment = ev
            if dlv in res.settled:
                continue
            if state["head_created"] is None:
                state["head_created"] = at
            res.ratings.append((len(res.ratings) + 1, dlv, r, r, score, comment, False, False,
                                at, at))  # fmt: skip
            res.code_used[(dlv, r)] = at
            scores.setdefault(dlv, []).append(score)
            res.applied.append((at, "rate", dlv, r, score, comment))
            if len(scores[dlv]) == bens_of[dlv]:
                settle(dlv, None, at)
        elif kind == "settle":
            _at, _s, _k, dlv, secretary = ev
            if dlv in res.settled:
                continue
            if state["head_created"] is None:
                state["head_created"] = at
            res.applied.append((at, "settle", dlv, secretary, dlv not in scores))
            settle(dlv, secretary, at)
        else:
            request(at, *ev[3:], later)
        done += 1
        if done % 10_000 == 0:
            bar.add(10_000)
    bar.add(done % 10_000)
    bar.finish()
    if tx_rows:
        res.head = (1, len(tx_rows), state["prev"], len(tx_rows), tx_rows[-1][11])
    elif state["head_created"] is not None:
        res.head = (1, None, GENESIS_HASH, 0, state["head_created"])
    res.final_stock = stock
    return res


# --- writing ----------------------------------------------------------------------


def _naive(value: Any) -> Any:
    # SQLite stores UTCDateTime as naive UTC (models.types.UTCDateTime); PG keeps tz.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal):
        return float(value)
    return value


def bulk(conn: Any, name: str, columns: list[str], rows: Any, total: int, label: str = "") -> None:
    """Insert ``rows`` (tuples in ``columns`` order) in batches with a progress bar:
    PostgreSQL ``COPY``, SQLite ``executemany``."""
    bar = Progress(label or name, total)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        sql = f"COPY {name} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(sql) as cp:
            n = 0
            for row in rows:
                cp.write_row(row)
                n += 1
                if n == BATCH:
                    bar.add(n)
                    n = 0
            bar.add(n)
    else:
        sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        it = iter(rows)
        while batch := list(itertools.islice(it, BATCH)):
            raw.executemany(sql, [tuple(map(_naive, r)) for r in batch])
            bar.add(len(batch))
    bar.finish()


def _set_sequences(conn: Any) -> None:
    if conn.dialect.name != "postgresql":
        return
    for table in db.metadata.sorted_tables:
        if (
            "id" in table.c
            and table.c.id.autoincrement is not False
            and table.name != "ledger_head"
        ):
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                f" COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"
            )


#: Tables whose secondary indexes are dropped during a PostgreSQL load.
BIG_TABLES = ("ledger_entries", "ledger_transactions", "ranking_members", "ranking_teams",
              "settlement_postings", "settlements", "ratings", "deliveries",
              "delivery_participants", "delivery_beneficiaries", "ranking_score_counts")  # fmt: skip


def _drop_indexes(conn: Any) -> list[sa.Index]:
    """Drop the non-unique secondary indexes of the big tables (PostgreSQL); return them."""
    if conn.dialect.name != "postgresql":
        return []
    dropped = []
    for name in BIG_TABLES:
        for index in db.metadata.tables[name].indexes:
            if not index.unique:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
                dropped.append(index)
    return dropped


def load_base(conn: Any, p: Plan, res: Result | None = None) -> None:
    """Write the plan's base rows; with ``res`` the deliveries' final states too
    (settled, codes used), else as recorded (awaiting ratings, codes unused)."""
    bulk(conn, "areas", ["id", "name", "kind", "parent_id", "path", "depth", "timezone",
                         "created_at"],
         (a + ("Asia/Shanghai", p.since) for a in p.areas), len(p.areas))  # fmt: skip
    bulk(conn, "users", ["id", "username", "password_hash", "display_name", "is_active",
                         "session_version", "created_at"], p.users, len(p.users))  # fmt: skip
    bulk(conn, "role_grants", ["id", "user_id", "role", "area_id", "granted_at", "revoked_at"],
         p.grants, len(p.grants))  # fmt: skip
    bulk(conn, "projects", ["id", "community_id", "owner_id", "title", "description", "category",
                            "mode", "capacity", "team_size", "planned_minutes", "skills",
                            "target_groups", "status", "created_at", "updated_at"],
         p.projects, len(p.projects))  # fmt: skip
    from volunteer_market.models import PointsPolicy

    conn.execute(PointsPolicy.__table__.insert().values(**p.policy))
    settled = res.settled if res is not None else set()
    used = res.code_used if res is not None else {}
    bulk(conn, "deliveries", ["id", "project_id", "community_id", "recorded_by_id",
                              "started_at", "ended_at", "status", "rating_deadline",
                              "created_at"],
         ((i, pr, c, rec, s, e, "settled" if i in settled else "awaiting_ratings", dl, at)
          for i, pr, c, rec, s, e, dl, at in p.deliveries), len(p.deliveries))  # fmt: skip
    bulk(conn, "delivery_participants", ["id", "delivery_id", "user_id", "minutes"],
         p.participants, len(p.participants))  # fmt: skip
    bulk(conn, "delivery_beneficiaries", ["id", "delivery_id", "user_id", "rating_code_hash",
                                          "rating_token_hash", "code_used_at"],
         ((*b, used.get((b[1], b[2]))) for b in p.beneficiaries),
         len(p.beneficiaries))  # fmt: skip


def load_result(conn: Any, res: Result) -> None:
    """Write what the events produced (see :func:`simulate`)."""
    bulk(conn, "ratings", ["id", "delivery_id", "beneficiary_id", "entered_by_id", "score",
                           "comment", "is_proxy", "via_code", "created_at", "updated_at"],
         res.ratings, len(res.ratings))  # fmt: skip
    bulk(conn, "ledger_accounts", ["id", "kind", "user_id", "community_id", "owner_key",
                                   "balance", "earned", "created_at"],
         sorted(res.accounts.values()), len(res.accounts))  # fmt: skip
    bulk(conn, "ledger_transactions", ["id", "kind", "idempotency_key", "member_id",
                                       "community_id", "delivery_id", "redemption_id",
                                       "minutes", "policy_id", "actor_id", "reason",
                                       "created_at", "prev_hash", "hash"],
         res.transactions, len(res.transactions))  # fmt: skip
    bulk(conn, "ledger_entries", ["id", "transaction_id", "account_id", "amount", "created_at"],
         res.entries, len(res.entries))  # fmt: skip
    bulk(conn, "settlements", ["id", "delivery_id", "community_id", "policy_id",
                               "policy_version", "ratings_count", "score_sum", "average_score",
                               "multiplier", "confirmed_unrated", "total_points",
                               "total_minutes", "settled_by_id", "settled_at"],
         res.settlements, len(res.settlements))  # fmt: skip
    bulk(conn, "settlement_postings", ["id", "settlement_id", "delivery_id", "user_id",
                                       "minutes", "counted_minutes", "points",
                                       "transaction_id"],
         res.postings, len(res.postings))  # fmt: skip
    stock = res.final_stock
    bulk(conn, "rewards", ["id", "area_id", "name", "description", "cost", "stock",
                           "per_member_limit", "limit_period", "sponsor", "is_active",
                           "created_at", "updated_at"],
         ((r["id"], r["area_id"], r["name"], "", r["cost"], stock[r["id"] - 1],
           r.get("per_member_limit"), r.get("limit_period", "all"), r.get("sponsor"), True,
           r["created_at"], r["created_at"]) for r in res.rewards),
         len(res.rewards))  # fmt: skip
    bulk(conn, "redemptions", ["id", "reward_id", "member_id", "community_id", "quantity",
                               "cost_each", "total", "status", "stock_reserved",
                               "limit_applied", "period_key", "pickup_code_hash", "code_salt",
                               "hold_transaction_id", "final_transaction_id", "expires_at",
                               "created_at", "reason", "decided_by_id", "updated_at"],
         ((*r[:7], *r[8:21]) for r in res.redemptions.values()),
         len(res.redemptions))  # fmt: skip
    bulk(conn, "reward_stock_changes", ["id", "reward_id", "kind", "delta", "stock_before",
                                        "stock_after", "redemption_id", "actor_id", "note",
                                        "created_at"],
         res.stock_changes, len(res.stock_changes))  # fmt: skip
    if res.head is not None:
        bulk(conn, "ledger_head", ["id", "last_transaction_id", "last_hash",
                                   "transaction_count", "updated_at"], [res.head], 1)  # fmt: skip


def rollups(p: Plan, earns: list[tuple]) -> tuple[list, list, list]:
    """Return the ranking rollup rows of ``earns`` exactly as ``rankings.rebuild()``
    computes them: member rows on the community, its ancestors and the member's grid
    while the grid grant was active at the earn, team rows on the community and its
    ancestors; periods from ``rankings.period_keys`` (Asia/Shanghai); ``reached_at`` =
    the latest earn; score buckets of member rows with points > 0. ``tests/bench``
    checks them against ``rebuild()`` and against the replay through the services.

    Earns are first summed per (member, community, grid, local month) -- one dict
    update per earn -- and only those sums are spread over areas and periods."""
    month_keys: dict[tuple, tuple] = {}
    m_agg: dict[tuple, list] = {}
    t_agg: dict[tuple, list] = {}
    grid_of, revoked_at = p.grid_of, p.revoked_at
    for at, u, cid, _dlv, project, minutes, pts in earns:
        hk = (at.year, at.month, at.day, at.hour)  # whole-hour offsets: same local month
        keys = month_keys.get(hk)
        if keys is None:
            keys = month_keys[hk] = tuple(rankings.period_keys(at, rankings.DEFAULT_TIMEZONE))
        grid = grid_of.get(u)
        if grid is not None and (u in revoked_at and revoked_at[u] <= at):
            grid = None
        for agg, key in ((m_agg, (u, cid, grid, keys)), (t_agg, (project, cid, keys))):
            row = agg.get(key)
            if row is None:
                agg[key] = [pts, minutes, at]
            else:
                row[0] += pts
                row[1] += minutes
                if at > row[2]:
                    row[2] = at
    members: dict[tuple, list] = {}
    teams: dict[tuple, list] = {}

    def spread(target: dict, areas: Any, keys: tuple, who: int, v: list) -> None:
        for a in areas:
            for k in keys:
                key = (a, k, who)
                row = target.get(key)
                if row is None:
                    target[key] = v[:]
                else:
                    row[0] += v[0]
                    row[1] += v[1]
                    if v[2] > row[2]:
                        row[2] = v[2]

    anc = p.ancestors
    for (u, cid, grid, keys), v in m_agg.items():
        spread(members, anc[cid] + ((grid,) if grid is not None else ()), keys, u, v)
    for (project, cid, keys), v in t_agg.items():
        spread(teams, anc[cid], keys, project, v)
    buckets: dict[tuple, int] = {}
    for (a, k, _u), (pts, _m, _at) in members.items():
        if pts > 0:
            buckets[(a, k, pts)] = buckets.get((a, k, pts), 0) + 1
    return (
        [(*k, *v) for k, v in members.items()],
        [(*k, *v) for k, v in teams.items()],
        [(*k, n) for k, n in buckets.items()],
    )


def write_rollups(conn: Any, p: Plan, earns: list[tuple]) -> dict[str, int]:
    m, t, b = rollups(p, earns)
    cols = ["area_id", "period_key", "user_id", "points", "minutes", "reached_at"]
    bulk(conn, "ranking_members", cols, m, len(m))
    cols[2] = "project_id"
    bulk(conn, "ranking_teams", cols, t, len(t))
    bulk(conn, "ranking_score_counts", ["area_id", "period_key", "points", "members"], b, len(b))
    return {"members": len(m), "teams": len(t), "buckets": len(b)}


# --- the command ------------------------------------------------------------------


def _tune(conn: Any) -> None:
    """Bulk-load settings of this connection (before its transaction begins)."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA journal_mode=MEMORY")
        raw.execute("PRAGMA foreign_keys=OFF")  # consistent by construction; verify checks
    else:
        with raw.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '256MB'")
            # No per-row foreign-key triggers during COPY (the rows are consistent by
            # construction; ledger verify and tests/bench check them). Superuser only.
            cur.execute("SET session_replication_role = replica")
        raw.commit()


def _untune(conn: Any) -> None:
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("PRAGMA journal_mode=WAL")  # as database.configure_engine sets it
    else:
        with raw.cursor() as cur:
            cur.execute("SET session_replication_role = DEFAULT")
        raw.commit()


def _server_cpu(conn: Any) -> float:
    """CPU seconds of this connection's PostgreSQL backend so far (same machine only;
    -1 when unknown): the server's share of the load, which the client's time omits."""
    if conn.dialect.name != "postgresql":
        return 0.0
    try:
        pid = conn.connection.driver_connection.info.backend_pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        import os

        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return -1.0


def write_database(url: str, p: Plan, res: Result) -> dict[str, float]:
    """Create the schema at ``url`` (dropping existing tables) and write the plan's base
    rows, the simulated rows and the rollups; return timings."""
    timings: dict[str, float] = {}
    db.drop_all()
    db.create_all()
    engine = db.engine
    t = time.perf_counter()
    with engine.connect() as conn:
        _tune(conn)
        with conn.begin():
            dropped = _drop_indexes(conn)
            load_base(conn, p, res)
            load_result(conn, res)
            timings["load_s"] = time.perf_counter() - t
            t = time.perf_counter()
            timings.update(write_rollups(conn, p, res.earns))
            timings["rollups_s"] = time.perf_counter() - t
            t = time.perf_counter()
            for index in dropped:
                sys.stderr.write(f"create index {index.name}\n")
                index.create(conn)
            _set_sequences(conn)
            timings["indexes_s"] = time.perf_counter() - t
        _untune(conn)
        timings["server_cpu_s"] = _server_cpu(conn)
    t = time.perf_counter()
    with engine.connect() as c3:
        if c3.dialect.name == "postgresql":
            c3.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        else:
            c3.exec_driver_sql("ANALYZE")
    timings["analyze_s"] = time.perf_counter() - t
    db.session.remove()
    engine.dispose()
    return timings


def generate(url: str, members: int, entries: int, seed: int = 7, now: datetime | None = None,
             residents: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Build the data set (see the module docstring); return sizes and timings."""
    from volunteer_market.services.redemptions import code_digest, derive_code

    t0 = time.perf_counter()
    app = make_app(url)
    with app.app_context():
        p = plan(members, entries, residents, seed, now)
        timings: dict[str, float] = {"plan_s": time.perf_counter() - t0}
        t = time.perf_counter()
        res = simulate(p, derive_code, code_digest)
        timings["simulate_s"] = time.perf_counter() - t
        timings.update(write_database(url, p, res))
    counts = {k: int(timings.pop(k)) for k in ("members", "teams", "buckets")}
    timings["total_s"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    timings["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    kinds: dict[str, int] = {}
    for row in res.transactions:
        kinds[row[1]] = kinds.get(row[1], 0) + 1
    statuses: dict[str, int] = {}
    for row in res.redemptions.values():
        statuses[row[8]] = statuses.get(row[8], 0) + 1
    return {
        "engine": "postgresql" if url.startswith("postgres") else "sqlite",
        "members": members,
        "residents": len(p.users) - members - len(p.communities) - 1,
        "entries": len(res.entries),
        "transactions": len(res.transactions),
        "transaction_kinds": kinds,
        "deliveries": len(p.deliveries),
        "settlements": len(res.settlements),
        "ratings": len(res.ratings),
        "redemptions": statuses,
        "earners": sum(1 for k in res.accounts if k[0] == "member_available"),
        "rollups": counts,
        **{k: round(v, 1) for k, v in timings.items()},
    }


def verify(url: str) -> Any:
    """Run every ``ledger verify`` check; return the first violation or None."""
    from volunteer_market.services import ledger_verify

    app = make_app(url)
    with app.app_context():
        found = ledger_verify.verify(ledger_verify.check_names())
        db.session.remove()
        db.engine.dispose()
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--residents", type=int, default=None, help="default: as many as members")
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--verify", action="store_true", help="run ledger verify afterwards")
    args = ap.parse_args(argv)
    info = generate(args.url, args.members, args.entries, args.seed, residents=args.residents)
    info["command"] = "python -m bench.generate " + " ".join(
        a if not a.startswith(("sqlite", "postgres")) else "URL" for a in (argv or sys.argv[1:])
    )
    if args.verify:
        t = time.perf_counter()
        found = verify(args.url)
        info["verify_s"] = round(time.perf_counter() - t, 1)
        info["verify"] = "ok" if found is None else str(found)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"generate-{info['engine']}-{args.members}-{args.entries}.json"
    out.write_text(json.dumps(info, indent=1, ensure_ascii=False))
    print(json.dumps(info, ensure_ascii=False))
    return 0 if info.get("verify", "ok") == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
