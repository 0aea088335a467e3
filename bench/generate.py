"""Build a city-scale benchmark database in bulk.

    python -m bench.generate --url URL --members N --entries M [--residents R] [--verify]

Creates the schema (``db.create_all``; existing tables are dropped first) and loads a
whole city district: the area tree (1 district, 10 streets, 100 communities, 2 grids
each), one officer, one secretary per community, ``N`` members (Zipf-skewed activity),
``R`` residents, 5 approved projects per community, the default points policy, and
deliveries with participants and beneficiaries spread over the last two years. It
*simulates* in time order what the services would do with these events:

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

Streaming: :func:`plan` draws only the base rows; :func:`simulate` draws the events
one ``WINDOW_DAYS`` window at a time (deliveries beginning in it, requests made in
it; their later ratings, settlements and outcomes wait on a heap), applies every
event due before the window's end and writes the window's rows before drawing the
next. Carried across windows: accounts, hash-chain head, stock, counters, the
deliveries and redemptions still open, per-member monthly limits, team rollup sums;
member rollup sums go to a staging table per window and become the rollups
at the end in SQL (``INSERT … SELECT … GROUP BY`` per area level and period). Memory
is therefore bounded by a window, not by the data set (see docs/benchmarks.md for
the measured time and peak RSS at 1M and 10M entries).

Every row is what the services would have written for the same events at the same
times (ids, ledger keys, hash chain, account creation order, rollups):
``tests/bench/test_generate.py`` collects the service calls (``applied``), replays
them through the services into a second database and compares the two table by
table. Not generated: the audit log and notifications the services also write,
needs, replies.

Bulk paths: values are encoded once per engine (timestamps from per-day and
per-second string tables, no ``datetime`` per row); the stream's rows are written by
a child process (:class:`ProcessWriter`, on the second core) while this one draws:
PostgreSQL ``COPY`` text, SQLite ``executemany`` with ``synchronous=OFF`` /
``journal_mode=MEMORY`` and a 2.5 GB page cache; the big tables' secondary indexes are
dropped during the load and re-created afterwards on both engines.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import heapq
import itertools
import json
import math
import multiprocessing
import os
import pickle
import queue
import random
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.extensions import db
from volunteer_market.models import GENESIS_HASH, chain_genesis
from volunteer_market.models.ledger import MAX_REASON
from volunteer_market.services import points_policy as pp
from volunteer_market.services import rankings
from volunteer_market.services.rankings import annual
from volunteer_market.services.settlement import _decimal, _reason
from volunteer_market.zones import DEFAULT_TIMEZONE, zone

RESULTS = Path(__file__).parent / "results"
STREETS = 10
COMMUNITIES_PER_STREET = 10
GRIDS_PER_COMMUNITY = 2
PROJECTS_PER_COMMUNITY = 5
#: Zipf exponent of member activity (rank r gets weight 1 / r**s).
ZIPF_S = 0.9
BATCH = 50_000
#: Days of events drawn, applied and written at a time (bounds the memory).
WINDOW_DAYS = 7
#: Staging table of the per-window member rollup sums (dropped after the rollups).
STAGE = "gen_stage"
#: Row lists (one table's rows of one window each) queued for the writer process.
WRITE_QUEUE = 40
#: SQLite page cache during the load (KiB): the unique keys' b-trees (transaction hash
#: and idempotency key, rating token hash) take random inserts; at 10M entries they
#: outgrow 1 GB and the inserts grow faster than the data.
SQLITE_CACHE_KB = 2_500_000
YEARS = 2
#: Key of the pickup codes (``PICKUP_CODE_KEY``) in the generated databases.
PICKUP_KEY = "bench-pickup-code-key"
#: Rating scores and their weights (realistic skew: mostly 5s, a few poor ones).
SCORES = (5, 4, 3, 2, 1)
SCORE_WEIGHTS = (58, 24, 9, 5, 4)
#: Share of beneficiaries who rate at all (the rest leave it to the secretary).
RATE_SHARE = 0.85
#: Durations of a delivery (minutes), drawn uniformly.
MINUTES = (30, 60, 60, 90, 120, 120, 180, 240)
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


# --- the plan: base rows and the drawing parameters ---------------------------------


@dataclass
class Plan:
    """The base data set and what the event drawing needs (see :func:`plan`).

    The events themselves (deliveries, ratings, settlements, redemption requests and
    their outcomes) are drawn window by window by :func:`simulate`, never all held."""

    now: datetime
    start: datetime
    since: datetime
    entries: int = 0
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
    #: Drawing state: the random generator after the base rows, the number of earns
    #: and requests to draw, Zipf tables, community pools.
    rng: random.Random = field(default_factory=random.Random)
    n_earns: int = 0
    n_requests: int = 0
    order: list[int] = field(default_factory=list)
    cum: list[float] = field(default_factory=list)
    by_comm: dict[int, list[int]] = field(default_factory=dict)
    residents_of: dict[int, list[int]] = field(default_factory=dict)
    projects_of: dict[int, list[int]] = field(default_factory=dict)
    redeemers: list[int] = field(default_factory=list)
    rcum: list[float] = field(default_factory=list)


def plan(members: int, entries: int, residents: int | None = None, seed: int = 7,
         now: datetime | None = None, redeem_rate: float = REDEEM_RATE,
         streets: int = STREETS, communities_per_street: int = COMMUNITIES_PER_STREET,
         ) -> Plan:  # fmt: skip
    """Draw the base data set (areas, users, grants, projects, policy, rewards) and
    prepare the event drawing. Activity grows linearly over the two years (density of
    deliveries and requests proportional to time)."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=365 * YEARS)
    since = start - timedelta(days=30)
    p = Plan(now=now, start=start, since=since, entries=entries)
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
    p.residents_of = {c: [] for c in comms}
    for u in resident_ids:
        cid = comms[rng.randrange(len(comms))]
        p.residents_of[cid].append(u)
        p.users.append((u, f"r{u}", "!bench", f"居民{u}", True, 1, since))
        p.grants.append((next(gid), u, "resident", cid, since, None))
    for cid in comms:  # every community has someone to serve
        if not p.residents_of[cid]:
            p.residents_of[cid].append(resident_ids[rng.randrange(len(resident_ids))])

    # projects, policy, rewards
    pid = itertools.count(1)
    for cid in comms:
        p.projects_of[cid] = []
        for _k in range(PROJECTS_PER_COMMUNITY):
            n = next(pid)
            p.projects_of[cid].append(n)
            p.title_of[n] = f"项目{n}"
            p.projects.append(
                (n, cid, p.secretary_of[cid], f"项目{n}", "基准测试项目", "elderly", "event",
                 30, 1, 120, "[]", "[]", "approved", since, since)
            )  # fmt: skip
    p.policy = {"id": 1, "community_id": None, "version": 1, **pp.default_policy_values(),
                "created_at": since}  # fmt: skip

    p.n_earns = max(1, int(entries / 2 * 1.03 / (1 + redeem_rate)))
    p.n_requests = n_requests = int(p.n_earns * redeem_rate)
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

    # Zipf-skewed activity: rank independent of id and community
    p.order = member_ids[:]
    rng.shuffle(p.order)
    p.cum = list(itertools.accumulate(1 / (r**ZIPF_S) for r in range(1, members + 1)))
    p.by_comm = {c: [] for c in comms}
    for u in member_ids:
        p.by_comm[p.community_of[u]].append(u)
    p.redeemers = [u for u in p.order if u not in suspended and u not in ended]
    p.rcum = list(itertools.accumulate(1 / (r**ZIPF_S) for r in range(1, len(p.redeemers) + 1)))
    p.rng = rng
    return p


# --- encoding: whole-second instants and values as the database takes them -----------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(at: datetime) -> int:
    """Epoch seconds of a whole-second instant (every generated instant is one)."""
    return int(at.timestamp())


def _dt(t: int) -> datetime:
    return _EPOCH + timedelta(seconds=t)


class Enc:
    """Values as one engine's bulk path takes them: SQLite ``executemany`` parameters
    (naive UTC text for timestamps, as ``models.types.UTCDateTime`` stores them, floats
    for numerics) or PostgreSQL ``COPY`` text fields (``\\N``, ``t``/``f``, ISO
    timestamps with offset, escaped text). Timestamps come from per-day and
    per-second-of-day string tables instead of ``datetime`` formatting."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self.null: Any = r"\N" if self.pg else None
        self.true: Any = "t" if self.pg else True
        self.false: Any = "f" if self.pg else False
        self.suffix = "+00" if self.pg else ".000000"
        self.days: dict[int, str] = {}
        self.hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60)
                    for s in range(60)]  # fmt: skip

    def day(self, d: int) -> str:
        s = self.days.get(d)
        if s is None:
            s = self.days[d] = (_EPOCH + timedelta(days=d)).strftime("%Y-%m-%d")
        return s

    def iso(self, t: int) -> str:
        """``services.ledger``'s ``created_at`` in the hash (``isoformat``, UTC, µs)."""
        q, r = divmod(t, 86400)
        return f"{self.day(q)}T{self.hms[r]}.000000+00:00"

    def ts(self, t: int | None) -> Any:
        if t is None:
            return self.null
        q, r = divmod(t, 86400)
        return f"{self.day(q)} {self.hms[r]}{self.suffix}"

    def text(self, s: str | None) -> Any:
        if s is None:
            return self.null
        if self.pg and ("\\" in s or "\t" in s or "\n" in s or "\r" in s):
            s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            s = s.replace("\r", "\\r")
        return s

    def num(self, value: Decimal | None) -> Any:
        if value is None:
            return self.null
        return str(value) if self.pg else float(value)

    def opt(self, value: Any) -> Any:
        return self.null if value is None else value


def _write_rows(raw: Any, pg: bool, sql: dict[str, str], name: str, columns: tuple[str, ...],
                rows: list[tuple]) -> None:  # fmt: skip
    """Write encoded ``rows`` on the driver connection ``raw``: ``COPY`` text chunks on
    PostgreSQL, ``executemany`` on SQLite (``sql`` caches the INSERT per table)."""
    if pg:
        with raw.cursor() as cur, cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as cp:
            for i in range(0, len(rows), BATCH):
                cp.write("".join(["\t".join(map(str, r)) + "\n" for r in rows[i : i + BATCH]]))
    else:
        if name not in sql:
            sql[name] = (f"INSERT INTO {name} ({', '.join(columns)}) "
                         f"VALUES ({', '.join('?' * len(columns))})")  # fmt: skip
        raw.executemany(sql[name], rows)


class Writer:
    """Bulk writes of encoded rows on one connection, in its transaction: ``COPY``
    text chunks on PostgreSQL, ``executemany`` on SQLite. ``rows`` counts what was
    written, ``seconds`` the time spent writing."""

    def __init__(self, conn: Any) -> None:
        self.enc = Enc(conn.dialect.name)
        self.raw = conn.connection.driver_connection
        self.rows = 0
        self.seconds = 0.0
        self._sql: dict[str, str] = {}

    def write(self, name: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        t = time.perf_counter()
        self.rows += len(rows)
        _write_rows(self.raw, self.enc.pg, self._sql, name, columns, rows)
        self.seconds += time.perf_counter() - t


class ProcessWriter:
    """The stream's writes in a child process with its own connection, on the second
    core, while this process draws the next window.

    A writer *thread* shares the GIL: SQLite's ``executemany`` takes it back after
    every row (a thread was measured slower than none), and PostgreSQL's COPY text is
    built in Python. A forked child does both beside the drawing. Row lists go
    pickled through a bounded queue; the child writes them in one transaction (COPY
    with ``session_replication_role = replica`` on PostgreSQL, as the loading
    connection) and commits at :meth:`close`. The caller must hold no lock the child
    needs (commit the schema changes first). ``target``: the SQLite file, or a libpq
    URL. ``seconds``: the child's time in the writes; ``waited``: this process's time
    blocked on a full queue (then the writer was the bottleneck); ``server_cpu``: the
    CPU seconds of the child's PostgreSQL backend (0 on SQLite). The child's own CPU
    time and peak RSS count in ``RUSAGE_CHILDREN`` once it has been joined.

    ``fork`` (Linux): the child starts at once with the module loaded and touches
    none of the parent's connections; it opens its own."""

    def __init__(self, dialect: str, target: str, dbapi: Any = None) -> None:
        ctx = multiprocessing.get_context("fork")
        self.enc = Enc(dialect)
        self.rows = 0
        self.seconds = 0.0
        self.waited = 0.0
        self.server_cpu = 0.0
        self._report: tuple[str, Any] | None = None
        self._closed = self._raised = False
        self._jobs = ctx.Queue(maxsize=WRITE_QUEUE)
        self._result = ctx.Queue()
        args = (dialect, target, dbapi, self._jobs, self._result)
        self._proc: Any = ctx.Process(target=_process_writer, args=args, name="bench-writer",
                                      daemon=True)  # fmt: skip
        self._proc.start()

    def _put(self, job: bytes | None) -> None:
        t = time.perf_counter()
        while True:
            try:
                self._jobs.put(job, timeout=1.0)
                break
            except queue.Full:
                if not self._proc.is_alive():
                    self._fail()
        self.waited += time.perf_counter() - t

    def _outcome(self, timeout: float | None) -> tuple[str, Any]:
        """The child's report (once): ``("ok", (seconds, server_cpu))`` or
        ``("error", traceback)``; ``("error", exit code)`` if it died without one."""
        if self._report is None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._report is None:
                try:
                    self._report = self._result.get(timeout=1.0)
                except queue.Empty:
                    late = deadline is not None and time.monotonic() > deadline
                    if late or not self._proc.is_alive():
                        try:  # it may have reported just before exiting
                            self._report = self._result.get(timeout=1.0)
                        except queue.Empty:
                            self._report = ("error", f"exit code {self._proc.exitcode}")
        return self._report

    def _fail(self) -> None:
        self._raised = True
        # Nobody reads the queue any more: do not wait at exit to flush it into the pipe.
        self._jobs.cancel_join_thread()
        raise RuntimeError(f"the writer process failed: {self._outcome(5.0)[1]}")

    def write(self, name: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        if self._report is not None or not self._proc.is_alive():
            self._fail()
        self.rows += len(rows)
        self._put(pickle.dumps((name, columns, rows), protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        """Wait until the child has committed every row; raise what failed. Returns at
        once when the failure was already raised by :meth:`write` (called from a
        ``finally`` while that error propagates)."""
        if self._closed:
            return
        self._closed = True
        if self._report is None and self._proc.is_alive():
            self._put(None)
        status, detail = self._outcome(None)
        self._proc.join(timeout=10.0)
        if self._proc.is_alive():  # pragma: no cover - it reported; it is exiting
            self._proc.terminate()
        if status != "ok":
            self._jobs.cancel_join_thread()
            if self._raised:
                return
            raise RuntimeError(f"the writer process failed: {detail}")
        self.seconds, self.server_cpu = detail


def _process_writer(dialect: str, target: str, dbapi: Any, jobs: Any, result: Any) -> None:
    """The child of :class:`ProcessWriter`: write what arrives, commit at the end."""
    pg = dialect == "postgresql"
    try:
        if pg:
            import psycopg

            raw = psycopg.connect(target)
            with raw.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
                cur.execute("SET session_replication_role = replica")  # as _tune()
        else:
            raw = dbapi.connect(target, isolation_level=None)
            raw.execute("PRAGMA synchronous=OFF")
            raw.execute("PRAGMA journal_mode=MEMORY")
            raw.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
            raw.execute("PRAGMA busy_timeout=60000")
            raw.execute("BEGIN IMMEDIATE")
        seconds = 0.0
        sql: dict[str, str] = {}
        while (job := jobs.get()) is not None:
            name, columns, rows = pickle.loads(job)  # noqa: S301 - from our parent
            t = time.perf_counter()
            _write_rows(raw, pg, sql, name, columns, rows)
            seconds += time.perf_counter() - t
        t = time.perf_counter()
        if pg:
            raw.commit()
            server_cpu = _process_cpu(raw.info.backend_pid)
        else:
            raw.execute("COMMIT")
            server_cpu = 0.0
        raw.close()
        result.put(("ok", (seconds + time.perf_counter() - t, server_cpu)))
    except BaseException:  # reported to the parent, which raises it
        result.put(("error", traceback.format_exc()))


_KINDS_MEMBER = ("member_available", "member_held")


# --- the simulation: draw the events window by window, write what the services write --

_COLS = {
    "deliveries": ("id", "project_id", "community_id", "recorded_by_id", "started_at",
                   "ended_at", "status", "rating_deadline", "created_at"),
    "delivery_participants": ("id", "delivery_id", "user_id", "minutes"),
    "delivery_beneficiaries": ("id", "delivery_id", "user_id", "rating_code_hash",
                               "rating_token_hash", "code_used_at"),
    "ratings": ("id", "delivery_id", "beneficiary_id", "entered_by_id", "score", "comment",
                "is_proxy", "via_code", "created_at", "updated_at"),
    "ledger_transactions": ("id", "kind", "idempotency_key", "member_id", "community_id",
                            "delivery_id", "redemption_id", "minutes", "policy_id", "actor_id",
                            "reason", "created_at", "chain_key", "prev_hash", "hash"),
    "ledger_entries": ("id", "transaction_id", "account_id", "amount", "created_at"),
    "settlements": ("id", "delivery_id", "community_id", "policy_id", "policy_version",
                    "ratings_count", "score_sum", "average_score", "multiplier",
                    "confirmed_unrated", "total_points", "total_minutes", "settled_by_id",
                    "settled_at"),
    "settlement_postings": ("id", "settlement_id", "delivery_id", "user_id", "minutes",
                            "counted_minutes", "points", "transaction_id"),
    "redemptions": ("id", "reward_id", "member_id", "community_id", "quantity", "cost_each",
                    "total", "status", "stock_reserved", "limit_applied", "period_key",
                    "pickup_code_hash", "code_salt", "hold_transaction_id",
                    "final_transaction_id", "expires_at", "created_at", "reason",
                    "decided_by_id", "updated_at"),
    "reward_stock_changes": ("id", "reward_id", "kind", "delta", "stock_before", "stock_after",
                             "redemption_id", "actor_id", "note", "created_at"),
    "ledger_accounts": ("id", "kind", "user_id", "community_id", "owner_key", "balance",
                        "earned", "created_at"),
    "rewards": ("id", "area_id", "name", "description", "cost", "stock", "per_member_limit",
                "limit_period", "sponsor", "is_active", "created_at", "updated_at"),
    "ledger_head": ("id", "last_transaction_id", "last_hash", "transaction_count",
                    "updated_at"),
    "ledger_chain_heads": ("chain_key", "last_transaction_id", "last_hash",
                           "transaction_count", "updated_at"),
    STAGE: ("user_id", "district_id", "street_id", "community_id", "grid_id", "y", "q", "m",
            "points", "minutes", "reached_at"),
    "ranking_teams": ("area_id", "period_key", "project_id", "points", "minutes",
                      "reached_at"),
}  # fmt: skip


class _Dlv:
    """A delivery whose events are not all applied yet."""

    __slots__ = ("id", "project", "cid", "recorder", "began", "ended", "deadline", "minutes",
                 "team", "bens", "scores", "pending")  # fmt: skip

    def __init__(self, *values: Any) -> None:
        (self.id, self.project, self.cid, self.recorder, self.began, self.ended,
         self.deadline, self.minutes, self.team, self.bens) = values  # fmt: skip
        self.scores: list[int] = []
        self.pending = 0


def _add_sums(agg: dict[tuple, list], key: tuple, points: int, minutes: int, t: Any) -> None:
    """Add an earn to the rollup sums of ``key``: [points, minutes, latest instant]
    (earns arrive in time order, so the latest is this one)."""
    row = agg.get(key)
    if row is None:
        agg[key] = [points, minutes, t]
    else:
        row[0] += points
        row[1] += minutes
        row[2] = t


def simulate(p: Plan, derive_code: Any, code_digest: Any, out: Writer | ProcessWriter,
             applied: list[tuple] | None = None) -> dict[str, Any]:  # fmt: skip
    """Draw the events in windows of ``WINDOW_DAYS`` and apply them as the services
    would, writing each window's rows through ``out`` before drawing the next.

    Per window: draw the deliveries that begin in it (their ratings and the
    secretary's settlement go on the event heap, possibly into later windows) and the
    redemption requests made in it, apply every event due before the window's end in
    time order, write the rows. A delivery (a redemption) is written once nothing can
    change it any more. Carried across windows: accounts, hash-chain head, stock,
    counters, open deliveries/redemptions, the team rollups; member rollup sums go to
    the ``STAGE`` table per window. ``applied`` (for the replay test) receives what the
    services are asked, in order: ``(at, kind, *args)``.
    ``derive_code``/``code_digest`` are ``services.redemptions``' (they need the app).
    Returns counts and the carried state the final writes need.
    """
    enc, write = out.enc, out.write
    null, true, false = enc.null, enc.true, enc.false
    iso, ts, text = enc.iso, enc.ts, enc.text
    rng = p.rng
    rand, choice, randrange = rng.random, rng.choice, rng.randrange
    policy = SimpleNamespace(**p.policy)
    pol_id, pol_version, base_rate = policy.id, policy.version, policy.base_rate
    cap = policy.hours_cap_minutes
    now_t, start_t, since_t = _ts(p.now), _ts(p.start), _ts(p.since)
    window_s = policy.rating_window_days * 86400
    hold_s = policy.redemption_hold_days * 86400
    revoked = {u: _ts(at) for u, at in p.revoked_at.items()}
    grid_of, community_of, secretary_of = p.grid_of, p.community_of, p.secretary_of
    anc, title_of = p.ancestors, p.title_of
    sha = hashlib.sha256
    heappush, heappop = heapq.heappush, heapq.heappop
    local_zone = zone(DEFAULT_TIMEZONE)

    hours: dict[int, tuple] = {}

    def hour(t: int) -> tuple:
        """(period keys, local month start, ``YYYY-MM``) of the hour holding ``t``
        (Asia/Shanghai is a whole-hour offset: one local month per UTC hour)."""
        h = t // 3600
        info = hours.get(h)
        if info is None:
            at = _dt(h * 3600)
            local = at.astimezone(local_zone)
            begin = _ts(datetime(local.year, local.month, 1, tzinfo=local_zone))
            keys = tuple(rankings.period_keys(at, DEFAULT_TIMEZONE))
            info = hours[h] = (keys, begin, f"{local.year:04d}-{local.month:02d}")
        return info

    # output buffers of the current window
    b_dlv: list[tuple] = []
    b_part: list[tuple] = []
    b_ben: list[tuple] = []
    b_rat: list[tuple] = []
    b_tx: list[tuple] = []
    b_ent: list[tuple] = []
    b_set: list[tuple] = []
    b_post: list[tuple] = []
    b_red: list[tuple] = []
    b_stock: list[tuple] = []
    buffers = (("deliveries", b_dlv), ("delivery_participants", b_part),
               ("delivery_beneficiaries", b_ben), ("ratings", b_rat),
               ("ledger_transactions", b_tx), ("ledger_entries", b_ent),
               ("settlements", b_set), ("settlement_postings", b_post),
               ("redemptions", b_red), ("reward_stock_changes", b_stock))  # fmt: skip

    accounts: dict[tuple, list] = {}
    n = {"tx": 0, "entries": 0, "ratings": 0, "settlements": 0, "postings": 0,
         "stock": 0, "redemptions": 0, "deliveries": 0, "settled": 0,
         "earn": 0, "hold": 0, "redeem": 0, "release": 0}  # fmt: skip
    statuses: dict[str, int] = {}
    chain = [GENESIS_HASH, None, None]  # (unused hash), first head lock (t), last tx at (t)
    # one hash chain per community (services.ledger.head): [last hash, count, last id, at]
    chains: dict[int, list] = {}

    def link(cid: int) -> str:
        """The previous hash of community ``cid``'s chain (its genesis when empty)."""
        found = chains.get(cid)
        if found is None:
            found = chains[cid] = [chain_genesis(cid, GENESIS_HASH), 0, None, None]
        return found[0]

    def advance(cid: int, tid: int, digest: str, t: int) -> None:
        found = chains[cid]
        found[0], found[1], found[2], found[3] = digest, found[1] + 1, tid, t

    m_agg: dict[tuple, list] = {}
    t_agg: dict[tuple, list] = {}
    points_cache: dict[tuple, tuple] = {}
    points_of: dict[tuple, int] = {}
    reasons: dict[tuple, tuple] = {}

    def account(kind: str, user: int | None, community: int | None, t: int) -> list:
        key = (kind, user, community)
        acc = accounts.get(key)
        if acc is None:
            if chain[1] is None:
                chain[1] = t
            owner = f"{kind}:u{user or ''}:c{community or ''}"
            acc = accounts[key] = [len(accounts) + 1, kind, user, community, owner, 0, 0, t]
        return acc

    def post(kind: str, key: str, member: int, community: int, rid: int, actor: int | None,
             reason: str | None, t: int, debit: list, credit: list, amount: int) -> int:  # fmt: skip
        """A redemption transaction (hold/redeem/release): ``amount`` from debit to credit."""
        debit[5] -= amount
        credit[5] += amount
        assert debit[1] not in _KINDS_MEMBER or debit[5] >= 0
        if debit[0] < credit[0]:
            a1, m1, a2, m2 = debit[0], -amount, credit[0], amount
        else:
            a1, m1, a2, m2 = credit[0], amount, debit[0], -amount
        n["tx"] = tid = n["tx"] + 1
        n[kind] += 1
        prev = link(community)
        actor_j = "null" if actor is None else actor
        reason_j = "null" if reason is None else json.dumps(reason, ensure_ascii=False)
        raw = (
            f'{{"actor_id":{actor_j},"chain":{community},"community_id":{community},'
            f'"created_at":"{iso(t)}",'
            f'"delivery_id":null,"entries":[[{a1},{m1}],[{a2},{m2}]],'
            f'"idempotency_key":"{key}","kind":"{kind}","member_id":{member},'
            f'"minutes":null,"policy_id":null,"prev_hash":"{prev}",'
            f'"reason":{reason_j},"redemption_id":{rid},"reverses_id":null,"v":2}}'
        )
        digest = sha(raw.encode()).hexdigest()
        when = ts(t)
        b_tx.append((tid, kind, key, member, community, null, rid, null, null,
                     null if actor is None else actor, text(reason), when, community, prev,
                     digest))  # fmt: skip
        e = n["entries"]
        b_ent.append((e + 1, tid, a1, m1, when))
        b_ent.append((e + 2, tid, a2, m2, when))
        n["entries"] = e + 2
        chain[2] = t
        advance(community, tid, digest, t)
        return tid

    def settle(dv: _Dlv, actor: int | None, t: int) -> None:
        """``services.settlement.settle``: the settlement, its lines, the earns."""
        dlv, cid, project = dv.id, dv.cid, dv.project
        given = dv.scores
        ck = (len(given), sum(given))
        cached = points_cache.get(ck)
        if cached is None:
            avg = pp.average_score(given)
            factor = pp.multiplier(avg, policy)
            avg_dec = _decimal(avg) if avg is not None else None
            cached = points_cache[ck] = (avg, avg_dec, _decimal(factor), enc.num(avg_dec),
                                         enc.num(_decimal(factor)))  # fmt: skip
        avg, avg_dec, mult_dec, avg_db, mult_db = cached
        n["settlements"] = sid = n["settlements"] + 1
        # settlement._reason: "服务记录 #<id>" + a tail that depends on the project and
        # the scores only (cached; checked against _reason when cached)
        rk = (project, ck)
        tail = reasons.get(rk)
        if tail is None:
            s = SimpleNamespace(ratings_count=len(given), average_score=avg_dec,
                                multiplier=mult_dec, policy_version=pol_version)  # fmt: skip
            full = _reason(SimpleNamespace(id=dlv), title_of[project], s, base_rate)
            head = f"服务记录 #{dlv}"
            assert full.startswith(head) and len(full) + 12 < MAX_REASON, full
            rest = full[len(head) :]
            tail = reasons[rk] = (rest, json.dumps(rest, ensure_ascii=False)[1:], text(rest))
        head = f"服务记录 #{dlv}"
        reason_j = f'"{head}{tail[1]}'
        reason_db = head + tail[2]
        when, stamp = ts(t), iso(t)
        actor_j = "null" if actor is None else actor
        actor_db = null if actor is None else actor
        keys = hour(t)[0]
        minutes = dv.minutes
        total_p = total_m = 0
        counted = min(minutes, cap)  # pp.counted_minutes
        src = None
        for u in dv.team:
            pk = (minutes, ck)
            points = points_of.get(pk)
            if points is None:
                points = points_of[pk] = pp.points_for(minutes, avg, policy)
            tid: Any = null
            if points > 0:
                wallet = accounts.get(("member_available", u, None))
                if wallet is None:
                    wallet = account("member_available", u, None, t)
                if src is None:
                    src = accounts.get(("issuance", None, cid))
                    if src is None:
                        src = account("issuance", None, cid, t)
                src[5] -= points
                wallet[5] += points
                wallet[6] += points
                if src[0] < wallet[0]:
                    a1, m1, a2, m2 = src[0], -points, wallet[0], points
                else:
                    a1, m1, a2, m2 = wallet[0], points, src[0], -points
                n["tx"] = tid = n["tx"] + 1
                prev = link(cid)
                key = f"earn:d{dlv}:u{u}"
                # services.ledger.hash_content's canonical JSON (sorted keys, compact)
                raw = (
                    f'{{"actor_id":{actor_j},"chain":{cid},"community_id":{cid},'
                    f'"created_at":"{stamp}",'
                    f'"delivery_id":{dlv},"entries":[[{a1},{m1}],[{a2},{m2}]],'
                    f'"idempotency_key":"{key}","kind":"earn","member_id":{u},'
                    f'"minutes":{minutes},"policy_id":{pol_id},"prev_hash":"{prev}",'
                    f'"reason":{reason_j},"redemption_id":null,"reverses_id":null,"v":2}}'
                )
                digest = sha(raw.encode()).hexdigest()
                b_tx.append((tid, "earn", key, u, cid, dlv, null, minutes, pol_id, actor_db,
                             reason_db, when, cid, prev, digest))  # fmt: skip
                e = n["entries"]
                b_ent.append((e + 1, tid, a1, m1, when))
                b_ent.append((e + 2, tid, a2, m2, when))
                n["entries"] = e + 2
                chain[2] = t
                advance(cid, tid, digest, t)
                n["earn"] += 1
                # rollup sums per (member, community, grid, local month); reached_at is
                # the latest earn, i.e. this one (time order)
                grid = grid_of.get(u)
                if grid is not None and u in revoked and revoked[u] <= t:
                    grid = None
                _add_sums(m_agg, (u, cid, grid, keys), points, minutes, t)
                _add_sums(t_agg, (project, cid, keys), points, minutes, t)
            n["postings"] += 1
            b_post.append((n["postings"], sid, dlv, u, minutes, counted, points, tid))
            total_p += points
            total_m += minutes
        b_set.append((sid, dlv, cid, pol_id, pol_version, len(given), sum(given), avg_db,
                      mult_db, true if not given else false, total_p, total_m, actor_db,
                      when))  # fmt: skip
        n["settled"] += 1
        finish(dv, "settled")

    def finish(dv: _Dlv, status: str) -> None:
        """Write a delivery nothing can change any more (with its beneficiaries)."""
        live.pop(dv.id, None)
        dlv = dv.id
        ended = ts(dv.ended)
        b_dlv.append((dlv, dv.project, dv.cid, dv.recorder, ts(dv.began), ended, status,
                      ts(dv.deadline), ended))  # fmt: skip
        for bid, r, h, used in dv.bens:
            b_ben.append((bid, dlv, r, h, h, ts(used)))

    # rewards (created by the CLI at ``since``: initial stock changes)
    stock: list[int | None] = []
    since_db = ts(since_t)
    for i, r in enumerate(p.rewards, start=1):
        stock.append(r.get("stock"))
        n["stock"] += 1
        b_stock.append((n["stock"], i, "initial", null, null, enc.opt(r.get("stock")), null,
                        null, null, since_db))  # fmt: skip
    held_digests: set[str] = set()
    used: dict[tuple[int, int], list] = {}  # (member, reward) -> this month's redemptions
    open_red: dict[int, list] = {}
    live: dict[int, _Dlv] = {}
    heap: list[tuple] = []
    seq = itertools.count()
    outcome_of = {"cancel": "cancelled", "reject": "rejected", "expire": "expired"}

    def write_redemption(row: list) -> None:
        (rid, reward_id, u, cid, qty, cost, total, status, reserved, limit, pkey, digest,
         salt, hold, final, expires, created, reason, decided, updated) = row  # fmt: skip
        statuses[status] = statuses.get(status, 0) + 1
        b_red.append((rid, reward_id, u, cid, qty, cost, total, status,
                      true if reserved else false, enc.opt(limit), enc.opt(pkey), digest, salt,
                      hold, enc.opt(final), ts(expires), ts(created), text(reason),
                      enc.opt(decided), ts(updated)))  # fmt: skip

    def request(t: int, u: int, ridx: int, qty: int, outcome: str, delay: int,
                reason: str | None, salt: str) -> None:  # fmt: skip
        """``services.redemptions.request`` (refused requests leave nothing)."""
        reward = p.rewards[ridx]
        cid = community_of[u]
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
            _keys, begin, pkey = hour(t)
            mine = used.setdefault((u, ridx), [])
            mine[:] = [r for r in mine if r[16] >= begin]  # earlier months never count again
            taken = sum(r[4] for r in mine if r[7] in ("held", "fulfilled"))
            if taken + qty > limit:
                return  # LimitReached
        n["redemptions"] = rid = n["redemptions"] + 1
        held = account("member_held", u, None, t)
        hold = post("hold", f"hold:r{rid}", u, cid, rid, u, None, t, wallet, held, total)
        if left is not None:
            stock[ridx] = left - qty
        while True:
            code = derive_code(rid, salt)
            digest = code_digest(code)
            if digest not in held_digests:
                break
            salt = sha(salt.encode()).hexdigest()[:32]
        held_digests.add(digest)
        row = [rid, ridx + 1, u, cid, qty, reward["cost"], total, "held", left is not None,
               limit, pkey, digest, salt, hold, None, t + hold_s, t, None, None, t]  # fmt: skip
        if limit is not None:
            used[(u, ridx)].append(row)
        if left is not None:
            n["stock"] += 1
            b_stock.append((n["stock"], ridx + 1, "reserve", -qty, left, left - qty, rid, u, null,
                            ts(t)))  # fmt: skip
        if applied is not None:
            applied.append((_dt(t), "request", u, ridx + 1, qty, salt, rid))
        when = (t + hold_s if outcome == "expire" else t) + delay
        if (outcome == "fulfil" and when >= t + hold_s) or when > now_t:
            write_redemption(row)  # stays held
            return
        open_red[rid] = row
        heappush(heap, (when, next(seq), 3, outcome, rid, reason))

    def close(t: int, outcome: str, rid: int, reason: str | None) -> None:
        row = open_red.pop(rid)
        u, cid, total, ridx = row[2], row[3], row[6], row[1] - 1
        secretary = secretary_of[cid]
        actor = {"fulfil": secretary, "reject": secretary, "cancel": u, "expire": None}[outcome]
        held = account("member_held", u, None, t)
        if outcome == "fulfil":
            counter = account("redemption_sink", None, cid, t)
            kind, key, status = "redeem", f"redeem:r{rid}", "fulfilled"
        else:
            counter = account("member_available", u, None, t)
            kind, key, status = "release", f"release:r{rid}", outcome_of[outcome]
        tid = post(kind, key, u, cid, rid, actor, reason, t, held, counter, total)
        row[7], row[14], row[17], row[18], row[19] = status, tid, reason, actor, t
        held_digests.discard(row[11])
        if outcome != "fulfil" and row[8]:
            left = stock[ridx]
            stock[ridx] = left + row[4]
            n["stock"] += 1
            b_stock.append((n["stock"], ridx + 1, "return", row[4], left, left + row[4], rid,
                            enc.opt(actor), null, ts(t)))  # fmt: skip
        write_redemption(row)
        if applied is not None:
            applied.append((_dt(t), outcome, rid, actor, reason))

    # drawing tables
    order, cum, by_comm = p.order, p.cum, p.by_comm
    cum_last = cum[-1]
    residents_of, projects_of = p.residents_of, p.projects_of
    redeemers, rcum = p.redeemers, p.rcum
    rcum_last = rcum[-1] if rcum else 0.0
    comm_index = {c: i for i, c in enumerate(p.communities)}
    n_district = 3
    outcome_names = [o for o, _w in OUTCOMES]
    outcome_cum = list(itertools.accumulate(w for _o, w in OUTCOMES))
    score_cum = list(itertools.accumulate(SCORE_WEIGHTS))
    score_total = score_cum[-1]
    span = now_t - start_t - 4 * 3600  # deliveries end before now
    total_span = now_t - start_t
    step = WINDOW_DAYS * 86400
    bisect_left = bisect.bisect_left
    did = part_id = ben_id = planned = drawn_requests = 0
    n_events = 0

    def flush() -> None:
        for name, buf in buffers:
            if buf:
                write(name, _COLS[name], buf)  # written or pickled before it returns
                buf.clear()
        if m_agg:
            rows = []
            for (u, cid, grid, keys), (pts, mins, t) in m_agg.items():
                d, s, c = anc[cid]
                rows.append((u, d, s, c, null if grid is None else grid, keys[1], keys[2],
                             keys[3], pts, mins, ts(t)))  # fmt: skip
            write(STAGE, _COLS[STAGE], rows)
            m_agg.clear()

    bar = Progress("generate (windows)", p.entries)
    w0 = start_t
    while w0 <= now_t:
        w1 = min(w0 + step, now_t + 1)
        # deliveries beginning in [w0, w1): density grows linearly (offset x ~ sqrt(U))
        f0 = min(1.0, ((w0 - start_t) / span) ** 2)
        f1 = min(1.0, ((w1 - start_t) / span) ** 2)
        target = p.n_earns if f1 >= 1.0 else int(p.n_earns * f1)
        while planned < target:
            lead = order[bisect_left(cum, rand() * cum_last)]
            cid = community_of[lead]
            team = {lead}
            for _ in range((0, 0, 1, 2)[int(rand() * 4)]):
                pool = by_comm[cid]
                team.add(pool[int(rand() * len(pool))])
            did += 1
            began = start_t + min(int(math.sqrt(f0 + rand() * (f1 - f0)) * span), w1 - start_t - 1)
            minutes = MINUTES[int(rand() * 8)]
            ended = began + minutes * 60
            deadline = ended + window_s
            pool = projects_of[cid]
            project = pool[int(rand() * len(pool))]
            members = sorted(team)
            for u in members:
                part_id += 1
                b_part.append((part_id, did, u, minutes))
            pool = residents_of[cid]
            n_ben = min(len(pool), (1, 1, 1, 2, 2, 3)[int(rand() * 6)])
            bens = []
            # the team's lead records it; the secretary (never a participant) settles it
            dv = _Dlv(did, project, cid, lead, began, ended, deadline, minutes,
                      members, bens)  # fmt: skip
            rated = 0
            for r in rng.sample(pool, n_ben):
                ben_id += 1
                h = sha(f"bench:{ben_id}".encode()).hexdigest()
                bens.append([ben_id, r, h, None])
                if rand() < RATE_SHARE:
                    at = ended + int(rng.expovariate(1 / 86400)) + 60
                    if at < deadline and at <= now_t:
                        score = SCORES[bisect_left(score_cum, rand() * score_total)]
                        comment = COMMENTS[int(rand() * len(COMMENTS))]
                        heappush(heap, (at, next(seq), 0, dv, r, score, comment))
                        rated += 1
            if rated < n_ben:
                at = deadline + int(rand() * 3 * 86400)
                if at <= now_t:
                    heappush(heap, (at, next(seq), 1, dv))
                    rated += 1
            n["deliveries"] += 1
            if rated:
                dv.pending = rated
                live[did] = dv
            else:
                finish(dv, "awaiting_ratings")
            planned += len(team)
        # redemption requests made in [w0, w1)
        g0 = ((w0 - start_t) / total_span) ** 2
        g1 = min(1.0, ((w1 - start_t) / total_span) ** 2)
        target = int(p.n_requests * g1) if g1 < 1.0 else p.n_requests
        while redeemers and drawn_requests < target:
            drawn_requests += 1
            u = redeemers[bisect_left(rcum, rand() * rcum_last)]
            cidx = comm_index[community_of[u]]
            pick = randrange(n_district + 2)
            reward_idx = pick if pick < n_district else n_district + 2 * cidx + pick - n_district
            at = start_t + min(int(math.sqrt(g0 + rand() * (g1 - g0)) * total_span),
                               w1 - start_t - 1)  # fmt: skip
            qty = 1 if rand() < 0.9 else 2
            outcome = outcome_names[bisect_left(outcome_cum, rand() * outcome_cum[-1])]
            if outcome == "fulfil":
                delay = randrange(1800, 10 * 86400)
                reason = None
            elif outcome == "cancel":
                delay = randrange(60, 5 * 86400)
                reason = choice(CANCEL_REASONS)
            elif outcome == "reject":
                delay = randrange(3600, 3 * 86400)
                reason = choice(REJECT_REASONS)
            else:
                delay = randrange(0, 3600)  # after expires_at: the hourly cron
                reason = None
            salt = f"{rng.getrandbits(128):032x}"
            heappush(heap, (at, next(seq), 2, u, reward_idx, qty, outcome, delay, reason, salt))
        # apply the events due in the window, in time order
        while heap and heap[0][0] < w1:
            ev = heappop(heap)
            t, kind = ev[0], ev[2]
            n_events += 1
            if kind == 0:  # a resident rates (services.ratings.rate)
                _t, _s, _k, dv, r, score, comment = ev
                if dv.id not in live:
                    continue
                dv.pending -= 1
                if chain[1] is None:
                    chain[1] = t
                n["ratings"] += 1
                when = ts(t)
                b_rat.append((n["ratings"], dv.id, r, r, score, text(comment), false, false,
                              when, when))  # fmt: skip
                for b in dv.bens:
                    if b[1] == r:
                        b[3] = t
                dv.scores.append(score)
                if applied is not None:
                    applied.append((_dt(t), "rate", dv.id, r, score, comment))
                if len(dv.scores) == len(dv.bens):
                    settle(dv, None, t)
                elif dv.pending == 0:
                    finish(dv, "awaiting_ratings")
            elif kind == 1:  # the secretary settles after the window
                dv = ev[3]
                if dv.id not in live:
                    continue
                if chain[1] is None:
                    chain[1] = t
                settler = secretary_of[dv.cid]
                if applied is not None:
                    applied.append((_dt(t), "settle", dv.id, settler, not dv.scores))
                settle(dv, settler, t)
            elif kind == 2:
                request(t, *ev[3:])
            else:
                close(t, *ev[3:])
        flush()
        bar.add(n["entries"] - bar.done)
        w0 = w1
    bar.finish()
    assert not heap and not open_red, "events left after now"
    for dv in list(live.values()):  # pragma: no cover - every event is before now
        finish(dv, "awaiting_ratings")
    flush()
    return {
        "accounts": accounts,
        "chain": chain,
        "chains": chains,
        "stock": stock,
        "t_agg": t_agg,
        "counts": n,
        "statuses": statuses,
        "events": n_events,
    }


# --- writing ----------------------------------------------------------------------


def _naive(value: Any) -> Any:
    # SQLite stores UTCDateTime as naive UTC (models.types.UTCDateTime); PG keeps tz.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal):
        return float(value)
    return value


def bulk(conn: Any, name: str, columns: list[str], rows: Any, total: int, label: str = "") -> None:
    """Insert the small tables' ``rows`` (Python values in ``columns`` order) with a
    progress bar: PostgreSQL ``COPY``, SQLite ``executemany``."""
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


def _analyze(engine: sa.Engine, *tables: str) -> None:
    """ANALYZE the database (or only ``tables``) outside a transaction."""
    sql = "ANALYZE " + ", ".join(tables) if tables else "ANALYZE"
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(sql)
        else:
            for table in tables or ("",):
                conn.exec_driver_sql(f"ANALYZE {table}".strip())
            conn.commit()


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


#: Tables whose secondary indexes (``Index`` objects; not the unique constraints of
#: the table definitions) are dropped during the load and re-created afterwards.
BIG_TABLES = ("ledger_entries", "ledger_transactions", "ranking_members", "ranking_teams",
              "settlement_postings", "settlements", "ratings", "deliveries",
              "delivery_participants", "delivery_beneficiaries", "ranking_score_counts",
              "redemptions", "reward_stock_changes")  # fmt: skip


def _drop_indexes(conn: Any) -> list[sa.Index]:
    """Drop the secondary indexes of the big tables; return them."""
    dropped = []
    for name in BIG_TABLES:
        for index in db.metadata.tables[name].indexes:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
            dropped.append(index)
    return dropped


def load_base(conn: Any, p: Plan) -> None:
    """Write the plan's base rows: areas, users, grants, projects, points policy."""
    bulk(conn, "areas", ["id", "name", "kind", "parent_id", "path", "depth", "timezone",
                         "created_at"],
         (a + ("Asia/Shanghai", p.since) for a in p.areas), len(p.areas))  # fmt: skip
    out = Writer(conn)
    enc = out.enc
    since, null = enc.ts(_ts(p.since)), enc.null
    bar = Progress("users, grants", len(p.users) + len(p.grants))
    out.write("users", ("id", "username", "password_hash", "display_name", "is_active",
                        "session_version", "created_at"),
              [(i, enc.text(name), pw, enc.text(shown), enc.true if active else enc.false, v,
                since) for i, name, pw, shown, active, v, _at in p.users])  # fmt: skip
    out.write("role_grants", ("id", "user_id", "role", "area_id", "granted_at", "revoked_at"),
              [(i, u, role, area, since, null if ended is None else enc.ts(_ts(ended)))
               for i, u, role, area, _at, ended in p.grants])  # fmt: skip
    bar.add(out.rows)
    bar.finish()
    bulk(conn, "projects", ["id", "community_id", "owner_id", "title", "description", "category",
                            "mode", "capacity", "team_size", "planned_minutes", "skills",
                            "target_groups", "status", "created_at", "updated_at"],
         p.projects, len(p.projects))  # fmt: skip
    from volunteer_market.models import PointsPolicy

    conn.execute(PointsPolicy.__table__.insert().values(**p.policy))


def write_final(out: Writer | ProcessWriter, p: Plan, sim: dict[str, Any]) -> None:
    """The rows whose final state is known at the end: accounts (cached balance and
    earned), rewards (stock left), the ledger head."""
    enc = out.enc
    out.write("ledger_accounts", _COLS["ledger_accounts"],
              [(i, kind, enc.opt(u), enc.opt(c), owner, bal, earned, enc.ts(t))
               for i, kind, u, c, owner, bal, earned, t in sorted(sim["accounts"].values())])  # fmt: skip
    since = enc.ts(_ts(p.since))
    stock = sim["stock"]
    out.write("rewards", _COLS["rewards"],
              [(i, r["area_id"], enc.text(r["name"]), "", r["cost"], enc.opt(stock[i - 1]),
                enc.opt(r.get("per_member_limit")), r.get("limit_period", "all"),
                enc.text(r.get("sponsor")), enc.true, since, since)
               for i, r in enumerate(p.rewards, start=1)])  # fmt: skip
    # One head per community chain with transactions (services.ledger.head); the legacy
    # head (ledger_head) is never written: a new database has no legacy chain.
    out.write("ledger_chain_heads", _COLS["ledger_chain_heads"],
              [(cid, tid, digest, count, enc.ts(at))
               for cid, (digest, count, tid, at) in sorted(sim["chains"].items())])  # fmt: skip


def _create_stage(conn: Any) -> None:
    """The per-window member rollup sums (one row per member, community, grid, local
    month and window): an ordinary table (the writer process fills it; unlogged on
    PostgreSQL), dropped by :func:`write_rollups`."""
    pg = conn.dialect.name == "postgresql"
    ts = "TIMESTAMP WITH TIME ZONE" if pg else "TEXT"
    conn.exec_driver_sql(
        f"CREATE {'UNLOGGED ' if pg else ''}TABLE {STAGE} (user_id INTEGER NOT NULL,"
        " district_id INTEGER NOT NULL,"
        " street_id INTEGER NOT NULL, community_id INTEGER NOT NULL, grid_id INTEGER,"
        " y VARCHAR(7) NOT NULL, q VARCHAR(7) NOT NULL, m VARCHAR(7) NOT NULL,"
        f" points BIGINT NOT NULL, minutes BIGINT NOT NULL, reached_at {ts} NOT NULL)"
    )


def write_rollups(conn: Any, out: Writer, p: Plan, sim: dict[str, Any]) -> dict[str, int]:
    """Write the ranking rollups exactly as ``rankings.rebuild()`` computes them: member
    rows on the community, its ancestors and the member's grid while the grid grant
    was active at the earn, team rows on the community and its ancestors; periods from
    ``rankings.period_keys`` (Asia/Shanghai: all, year, quarter, month); ``reached_at``
    = the latest earn; ``eligible`` false on excluded members' rows
    (``rankings.MARK_EXCLUDED_SQL``); score buckets of eligible rows with points > 0.

    Member rows: the staged per-window sums are summed per month (``{STAGE}_m``), then
    ``INSERT … SELECT … GROUP BY`` per area level and period (sums and the latest
    instant compose over months). Team rows (a few per project) from the sums carried
    in memory. ``tests/bench`` checks them against ``rebuild()`` and the replay."""
    month = f"{STAGE}_m"
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {month} AS SELECT user_id, district_id, street_id,"
        " community_id, grid_id, y, q, m, SUM(points) AS points, SUM(minutes) AS minutes,"
        f" MAX(reached_at) AS reached_at FROM {STAGE}"
        " GROUP BY user_id, district_id, street_id, community_id, grid_id, y, q, m"
    )
    conn.exec_driver_sql(f"DROP TABLE {STAGE}")
    steps = [(a, k) for a in ("district_id", "street_id", "community_id", "grid_id")
             for k in ("'all'", "y", "q", "m")]  # fmt: skip
    bar = Progress("ranking_members", len(steps))
    for area, key in steps:
        where = " WHERE grid_id IS NOT NULL" if area == "grid_id" else ""
        group = f"{area}, user_id" if key == "'all'" else f"{area}, {key}, user_id"
        conn.exec_driver_sql(
            "INSERT INTO ranking_members (area_id, period_key, user_id, points, minutes,"
            f" reached_at) SELECT {area}, {key}, user_id, SUM(points), SUM(minutes),"
            f" MAX(reached_at) FROM {month}{where} GROUP BY {group} ORDER BY {group}"
        )
        bar.add(1)
    bar.finish()
    conn.exec_driver_sql(f"DROP TABLE {month}")
    teams: dict[tuple, list] = {}
    for (project, cid, keys), v in sim["t_agg"].items():
        for a in p.ancestors[cid]:
            for k in keys:
                row = teams.get((a, k, project))
                if row is None:
                    teams[(a, k, project)] = v[:]
                else:
                    row[0] += v[0]
                    row[1] += v[1]
                    row[2] = max(row[2], v[2])
    ts = out.enc.ts
    out.write("ranking_teams", _COLS["ranking_teams"],
              [(a, k, pr, v[0], v[1], ts(v[2])) for (a, k, pr), v in sorted(teams.items())])  # fmt: skip
    # Excluded members' rows (suspended, or member role ended there): eligible false,
    # as the postings set it (the state never changes during the simulated history).
    conn.execute(sa.text(rankings.MARK_EXCLUDED_SQL))
    conn.exec_driver_sql(
        "INSERT INTO ranking_score_counts (area_id, period_key, points, members)"
        " SELECT area_id, period_key, points, COUNT(*) FROM ranking_members"
        " WHERE points > 0 AND eligible GROUP BY area_id, period_key, points"
    )
    count = {}
    for name, table in (("members", "ranking_members"), ("teams", "ranking_teams"),
                        ("buckets", "ranking_score_counts")):  # fmt: skip
        count[name] = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
    return count


# --- the command ------------------------------------------------------------------


def _tune(conn: Any) -> None:
    """Bulk-load settings of this connection (before its transaction begins)."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA journal_mode=MEMORY")
        raw.execute("PRAGMA foreign_keys=OFF")  # consistent by construction; verify checks
        raw.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")  # the unique keys' b-trees
        raw.execute("PRAGMA threads=2")  # sorter threads of CREATE INDEX / GROUP BY
    else:
        with raw.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute("SET work_mem = '256MB'")
            cur.execute("SET temp_buffers = '256MB'")
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
    return _process_cpu(conn.connection.driver_connection.info.backend_pid)


def _process_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` so far (-1 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return -1.0


def write_database(url: str, p: Plan, applied: list[tuple] | None = None) -> dict[str, Any]:
    """Create the schema at ``url`` (dropping existing tables), write the plan's base
    rows, stream the simulation's rows window by window, then the accounts, rewards,
    head and rollups; re-create the indexes. Return counts and timings. ``applied``
    receives the service calls (see :func:`simulate`)."""
    from volunteer_market.services.redemptions import code_digest, derive_code

    timings: dict[str, float] = {}
    engine = db.engine
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # else DROP TABLE areas fails on its own rows
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        with conn.begin():
            db.metadata.drop_all(conn)
        if conn.dialect.name == "sqlite":
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    db.create_all()
    t = time.perf_counter()
    with engine.connect() as conn:
        _tune(conn)
        pg = conn.dialect.name == "postgresql"
        with conn.begin():
            dropped = _drop_indexes(conn)
            load_base(conn, p)
            _create_stage(conn)
        # The stream's rows are written by a child process on its own connection
        # (ProcessWriter); this connection holds no transaction meanwhile.
        if pg:
            target = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        else:
            target = engine.url.database
        out = ProcessWriter(conn.dialect.name, target, conn.dialect.dbapi)
        try:
            sim = simulate(p, derive_code, code_digest, out, applied)
            write_final(out, p, sim)
        finally:
            out.close()
        timings["stream_s"] = time.perf_counter() - t
        timings["stream_write_s"] = out.seconds
        timings["stream_wait_s"] = out.waited
        t = time.perf_counter()
        rollup_out = Writer(conn)
        with conn.begin():
            rollups = write_rollups(conn, rollup_out, p, sim)
            timings["rollups_s"] = time.perf_counter() - t
            t = time.perf_counter()
            bar = Progress("create indexes", len(dropped))
            for index in dropped:
                index.create(conn)
                bar.add(1)
            bar.finish()
            _set_sequences(conn)
            timings["indexes_s"] = time.perf_counter() - t
            t = time.perf_counter()
        timings["commit_s"] = time.perf_counter() - t
        _untune(conn)
        timings["server_cpu_s"] = _server_cpu(conn) + out.server_cpu
    # Statistics first: the annual rebuild's plan depends on them (on PostgreSQL, with the
    # bulk-loaded tables unanalysed, it scanned every account once per transaction and
    # ran for hours at 10M entries).
    t = time.perf_counter()
    _analyze(engine)
    timings["analyze_s"] = time.perf_counter() - t
    # The annual report's rollups: recomputed from the written ledger by the service
    # (``rankings rebuild`` does the same); tests/bench compares them with the replay.
    t = time.perf_counter()
    rollups.update(annual.rebuild_annual())
    db.session.commit()
    timings["annual_rollups_s"] = time.perf_counter() - t
    t = time.perf_counter()
    _analyze(engine, "annual_stats", "annual_projects")
    timings["analyze_s"] += time.perf_counter() - t
    db.session.remove()
    engine.dispose()
    n = sim["counts"]
    return {
        "entries": n["entries"],
        "transactions": n["tx"],
        "transaction_kinds": {k: n[k] for k in ("earn", "hold", "redeem", "release") if n[k]},
        "deliveries": n["deliveries"],
        "settlements": n["settlements"],
        "ratings": n["ratings"],
        "redemptions": sim["statuses"],
        "earners": sum(1 for k in sim["accounts"] if k[0] == "member_available"),
        "rollups": rollups,
        "rows_written": out.rows + rollup_out.rows,
        "timings": timings,
    }


def generate(url: str, members: int, entries: int, seed: int = 7, now: datetime | None = None,
             residents: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Build the data set (see the module docstring); return sizes and timings."""
    t0 = time.perf_counter()
    app = make_app(url)
    with app.app_context():
        p = plan(members, entries, residents, seed, now)
        timings: dict[str, float] = {"plan_s": time.perf_counter() - t0}
        info = write_database(url, p)
    timings.update(info.pop("timings"))
    timings["total_s"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)  # the writer process
    timings["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    timings["writer_cpu_s"] = child.ru_utime + child.ru_stime
    return {
        "engine": "postgresql" if url.startswith("postgres") else "sqlite",
        "members": members,
        "residents": len(p.users) - members - len(p.communities) - 1,
        **info,
        **{k: round(v, 1) for k, v in timings.items()},
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "writer_peak_rss_mb": round(child.ru_maxrss / 1024),
    }


def verify(url: str) -> Any:
    """Run every ``ledger verify`` check; return the first violation or None."""
    from volunteer_market.services import verify as verifier

    app = make_app(url)
    with app.app_context():
        found = verifier.verify(verifier.check_names())
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
