"""Throughput benchmark (issue 7 P1, P2, P4): each figure next to its baseline.

    python -m bench.run [--quick] [--engine sqlite|postgresql|both]

Per engine, in one run:

1. builds a modest data set with ``bench.generate`` (default 10,000 members / 100,000
   entries; ``--quick``: 2,000 / 10,000) in a temporary SQLite file or a throw-away
   PostgreSQL database (``--pg-url``; created and dropped), then seeds through the
   services a bench community (secretary, members owning approved projects, residents,
   a reward of cost 1 with unlimited stock) and pools of deliveries;
2. **P1 in-process**: operations per second, one transaction each, of
   *earning* -- ``services.settlement.settle`` of a delivery whose rating window has
   closed (lock head, settlement record, earn posting with ranking rollups, audit,
   notification) -- and *redemption* (``services.redemptions.request``), against the
   baseline (issue 21): the same settlement rows written by hand with SQLAlchemy Core in
   one transaction (``bench.lean.core_settlement``, into scratch copies of the tables,
   through the same engine and ``atomic()``). Target: >= 50 % of the baseline;
3. **P2 over HTTP**: gunicorn with the production config (``gunicorn.conf.py``, its
   default 3 workers, access log to /dev/null), loaded by ``wrk`` on loopback with
   32 connections: ``GET /api/v1/me``, rating -> automatic settlement
   (``POST /api/v1/deliveries/{id}/ratings``, each delivery once), redemption
   (``POST /api/v1/rewards/{id}/redemptions``, unique ``Idempotency-Key`` per request),
   rankings GET (community/street/district x all/year/month, rotating) and the project
   list page (``GET /projects``, session cookie). The baselines come from a second
   gunicorn with the same config serving ``bench.lean:create_app()``: a bare JSON
   endpoint and a lean double-entry POST (Core, one transaction). Each scenario's
   baseline runs right before it and its ratio is against that run
   (:data:`BASELINE_OF`). Targets: ``/me`` >= 40 % of bare JSON, writes >= 25 % of the
   lean POST, rankings >= 50 % of ``/me``; p99 <= 150 ms, zero non-2xx responses;
4. **P4**: the largest ``VmHWM`` (peak RSS) of the gunicorn workers after the HTTP
   run. Target <= 150 MB.

P3 (rankings read latency) is ``bench.rankings``; its table is kept in its own section.

Rate limiting: no limiter applies to the measured endpoints (login throttling counts
failed logins only; rating-code throttling only ``/ratings/by-code``); the run still
sets ``API_RATE_LIMIT=1000000/minute`` and its own ``RATELIMIT_KEY_PREFIX``.

Writes ``bench/results/run-<engine>.json`` and the ``bench:run`` section of
``docs/benchmarks.md`` (``--no-doc`` to skip). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.database import atomic
from volunteer_market.extensions import db

from . import lean
from .doc import DOC, replace_section
from .generate import RESULTS
from .generate import generate as generate_data

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- bench:run:begin -->", "<!-- bench:run:end -->"
BIN = Path(sys.executable).parent
PASSWORD = "bench-pass-123"  # noqa: S105 - a throw-away bench database
CONNECTIONS = 32
BENCH_USER_AGENT = "bench.run/1"
WRK_THREADS = 2
P1_TARGET = 0.50
WRITE_TARGET = 0.25
RANKINGS_TARGET = 0.50
ME_TARGET = 0.40
P99_TARGET_MS = 150.0
RSS_TARGET_MB = 150.0

SIZES = {
    # name: members, entries, P1 operations, HTTP seconds, rating pool, owners
    # quick's pool: a rating is made once per delivery, so the pool must outlast 5 s at
    # the fastest rate seen (~45/s after issue 21 item 2; 250 ran out).
    "quick": {"members": 1000, "entries": 5_000, "p1_ops": 40, "seconds": 5, "pool": 600},
    "full": {"members": 10_000, "entries": 100_000, "p1_ops": 200, "seconds": 15, "pool": 1000},
}

_LUA = r"""
-- bench.run: requests from a file of lines METHOD \t PATH \t HEADERS \t BODY
-- (HEADERS: "Name: value" joined by " | "); each thread takes every n-th line.
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  cycle = os.getenv("BENCH_CYCLE") == "1"
  idem = os.getenv("BENCH_IDEM") == "1"
  prefix = os.getenv("BENCH_PREFIX") or "k"
  reqs = {}
  for line in io.lines(os.getenv("BENCH_REQS")) do
    local m, p, h, b = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    for name, value in h:gmatch("([%w%-]+): ([^|]+)") do
      headers[name] = value:gsub("%s+$", "")
    end
    if b ~= "" then headers["Content-Type"] = "application/json" end
    table.insert(reqs, {m, p, headers, b ~= "" and b or nil})
  end
  idx = tid + 1
  seq = 0
  non2xx = 0
  exhausted = 0
  codes = {}
end
function request()
  if idx > #reqs then
    if cycle then
      idx = ((idx - 1) % #reqs) + 1
    else
      exhausted = 1
      wrk.thread:stop()
      idx = ((idx - 1) % #reqs) + 1
    end
  end
  local r = reqs[idx]
  idx = idx + nthreads
  if idem then
    seq = seq + 1
    r[3]["Idempotency-Key"] = prefix .. "-" .. tid .. "-" .. seq
  end
  return wrk.format(r[1], r[2], r[3], r[4])
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    codes[status] = (codes[status] or 0) + 1
  end
end
function done(summary, latency, requests)
  local bad, ex, detail = 0, 0, {}
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    ex = ex + t:get("exhausted")
    for code, n in pairs(t:get("codes")) do
      detail[#detail + 1] = '"' .. code .. '": ' .. n
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "non2xx": %d, "socket_errors": %d, "exhausted_threads": %d, ' ..
    '"codes": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, bad, e.connect + e.read + e.write + e.timeout, ex, table.concat(detail, ", ")))
end
"""


def log(msg: str) -> None:
    sys.stderr.write(f"[bench.run {datetime.now(UTC):%H:%M:%S}] {msg}\n")
    sys.stderr.flush()


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "arch": platform.machine(),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def make_app(url: str) -> Any:
    # Cheap password hashes for the seeded users (the hash carries its own parameters).
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "TESTING": False,
            "PASSWORD_HASH_MEMORY_KIB": 8192,
            "PASSWORD_HASH_TIME_COST": 1,
        }
    )


# --- data --------------------------------------------------------------------------


def seed(
    url: str,
    size: dict[str, Any],
    owners: int = 40,
    redeemers: int = 16,
    resident_count: int = 8,
    member_grids: bool = False,
) -> dict[str, Any]:
    """Seed the bench community through the services; return ids and tokens.

    ``member_grids``: the members also hold a member grant on the bench grid.
    """
    from tests.factories import (
        give_points,
        make_area,
        make_delivery,
        make_project,
        make_reward,
        make_user,
    )
    from volunteer_market.models import Area, AreaKind, Role, User
    from volunteer_market.services import auth as auth_service

    app = make_app(url)
    out: dict[str, Any] = {}
    with app.app_context():
        district = db.session.execute(
            sa.select(Area).where(Area.kind == AreaKind.DISTRICT).order_by(Area.id).limit(1)
        ).scalar_one()
        street = make_area("压测街道", AreaKind.STREET, district)
        community = make_area("压测社区", AreaKind.COMMUNITY, street)
        grid = make_area("压测网格", AreaKind.GRID, community)
        secretary = make_user("bench_secretary", (Role.SECRETARY, community))
        residents = [
            make_user(f"bench_resident{i}", (Role.RESIDENT, grid)) for i in range(resident_count)
        ]
        grants = [(Role.MEMBER, community)] + ([(Role.MEMBER, grid)] if member_grids else [])
        members = [make_user(f"bench_member{i}", *grants) for i in range(owners)]
        log(f"seed: {owners} members, {resident_count} residents, 1 secretary")
        projects = [
            make_project(m, community, status="approved", title=f"压测项目{i}")
            for i, m in enumerate(members)
        ]
        log(f"seed: {len(projects)} approved projects")
        reward = make_reward(community, name="压测券", cost=1)
        redeem_users = members[:redeemers]
        for m in redeem_users:
            give_points(m, 100_000, community, reason="压测")
        now = datetime.now(UTC).replace(microsecond=0)

        def pool(n: int, at: datetime, label: str) -> list[tuple[int, int]]:
            made: list[tuple[int, int]] = []
            t0 = time.perf_counter()
            for i in range(n):
                k, slot = i % owners, i // owners
                resident = residents[i % len(residents)]
                rec = make_delivery(
                    projects[k],
                    members[k],
                    beneficiaries=[resident],
                    hours_ago=1 + slot * 0.55,
                    length_hours=0.5,
                    now=at,
                )
                made.append((rec.delivery.id, resident.id))
                if (i + 1) % 200 == 0 or i + 1 == n:
                    log(f"seed: {label} deliveries {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)")
            return made

        # P1 earning settles deliveries whose rating window (7 days) has closed.
        out["p1_deliveries"] = [d for d, _r in pool(size["p1_ops"], now - timedelta(days=9), "P1")]
        out["p2_deliveries"] = pool(size["pool"], now, "P2 rating")
        tokens = {}
        with atomic():
            for u in [*residents, *redeem_users, members[0]]:
                raw, _t = auth_service.issue_token(db.session.get(User, u.id), timedelta(days=1))
                tokens[u.id] = raw
        out.update(
            secretary_id=secretary.id,
            community_id=community.id,
            street_id=street.id,
            district_id=district.id,
            reward_id=reward.id,
            redeemer_ids=[m.id for m in redeem_users],
            viewer_id=members[0].id,
            web_user=members[0].username,
            tokens=tokens,
        )
        # A populated generated community for the rankings reads.
        from volunteer_market.models.rankings import RankingMember

        busiest = db.session.execute(
            sa.select(RankingMember.area_id, sa.func.count())
            .join(Area, Area.id == RankingMember.area_id)
            .where(Area.kind == AreaKind.COMMUNITY, RankingMember.period_key == "all")
            .group_by(RankingMember.area_id)
            .order_by(sa.func.count().desc())
            .limit(1)
        ).first()
        gen_comm = db.session.get(Area, busiest[0]) if busiest else community
        out["rank_areas"] = [gen_comm.id, gen_comm.parent_id, district.id]
        db.session.remove()
        db.engine.dispose()
    return out


def set_password(url: str, username: str) -> None:
    from volunteer_market.models import User
    from volunteer_market.services import passwords

    app = make_app(url)
    with app.app_context():
        with atomic():
            user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one()
            user.password_hash = passwords.hash_password(PASSWORD)
        db.session.remove()
        db.engine.dispose()


# --- P1 ----------------------------------------------------------------------------


def measure_p1(url: str, data: dict[str, Any], n: int) -> dict[str, Any]:
    from volunteer_market.models import Delivery, Reward, User
    from volunteer_market.services import redemptions, settlement

    app = make_app(url)
    res: dict[str, Any] = {"ops": n}
    with app.app_context():
        engine = db.engine
        # The baseline (issue 21): the same settlement rows written by hand with Core in
        # one transaction (bench/lean.py), into scratch copies of the tables.
        lean.create_tables(engine, deliveries=n)
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(1, n + 1):
                with atomic():
                    lean.core_settlement(db.session.connection(), i, 1 + i % lean.MEMBER_ACCOUNTS)
                db.session.remove()
            res["baseline_per_s"] = n / (time.perf_counter() - t0)
            res["baseline_cpu_ms"] = (time.process_time() - c0) * 1000 / n
            res["baseline_kind"] = "core_settlement"
            log(f"P1 baseline hand-written Core settlement: {res['baseline_per_s']:.1f}/s")
        finally:
            lean.drop_tables(engine)

        deliveries = data["p1_deliveries"][:n]
        t0, c0 = time.perf_counter(), time.process_time()
        for delivery_id in deliveries:
            db.session.remove()  # like a request: a fresh session, the actor loaded again
            secretary = db.session.get(User, data["secretary_id"])
            with atomic():
                delivery = db.session.get(Delivery, delivery_id)
                settlement.settle(secretary, delivery, confirm_unrated=True)
        res["earn_per_s"] = len(deliveries) / (time.perf_counter() - t0)
        res["earn_cpu_ms"] = (time.process_time() - c0) * 1000 / len(deliveries)
        log(f"P1 earning (settle + earn + rollups): {res['earn_per_s']:.1f}/s")

        redeemers = data["redeemer_ids"]
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            db.session.remove()
            member = db.session.get(User, redeemers[i % len(redeemers)])
            with atomic():
                reward = db.session.get(Reward, data["reward_id"])
                redemptions.request(member, reward, 1, idempotency_key=f"p1-{i}")
        res["redeem_per_s"] = n / (time.perf_counter() - t0)
        res["redeem_cpu_ms"] = (time.process_time() - c0) * 1000 / n
        log(f"P1 redemption: {res['redeem_per_s']:.1f}/s")
        db.session.remove()
        engine.dispose()
    for k in ("earn", "redeem"):
        res[f"{k}_ratio"] = res[f"{k}_per_s"] / res["baseline_per_s"]
        res[f"{k}_met"] = res[f"{k}_ratio"] >= P1_TARGET
    return res


# --- P2 / P4 -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with the production config on a free loopback port; always stopped."""

    def __init__(
        self, db_url: str, workdir: Path, app: str = "wsgi:app", name: str = "gunicorn"
    ) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "RATELIMIT_STORAGE_URI": os.environ.get(
                "BENCH_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379"
            ),
            "RATELIMIT_KEY_PREFIX": "bench-" + uuid.uuid4().hex,
            "API_RATE_LIMIT": "1000000/minute",
            "LEAN_DATABASE_URL": db_url,
        }
        self.env.pop("VM_ENV", None)  # gunicorn.conf.py sets production
        self.ready_path = "/bare" if app.startswith("bench.lean") else "/api/v1/openapi.json"
        self.stderr = open(workdir / f"{name}.err", "w+b")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"]
            + [app],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=5) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stderr.seek(0)
        raise RuntimeError("gunicorn did not start: " + self.stderr.read().decode()[-2000:])

    def workers(self) -> list[int]:
        pids = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(p.name))
        return pids

    @staticmethod
    def vm(pid: int, key: str) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.stderr.close()


def web_cookie(base: str, username: str) -> str:
    """Log in through the page (CSRF token, form post); return the Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    # The page requests send the same User-Agent: a session cookie presented by another
    # client (address + User-Agent) is signed out (session protection, issue 20).
    opener.addheaders = [("User-Agent", BENCH_USER_AGENT)]
    html = opener.open(base + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    if token is None:
        raise RuntimeError("no csrf_token on /login")
    form = urllib.parse.urlencode(
        {"csrf_token": token.group(1), "username": username, "password": PASSWORD}
    ).encode()
    opener.open(base + "/login", data=form, timeout=30).read()
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    with opener.open(base + "/projects", timeout=30) as r:
        if r.status != 200 or "/login" in r.url:
            raise RuntimeError("web login failed")
    return cookie


def run_wrk(
    base: str,
    workdir: Path,
    name: str,
    lines: list[str],
    seconds: int,
    *,
    cycle: bool,
    idem: bool = False,
) -> dict[str, Any]:
    reqs = workdir / f"{name}.reqs"
    reqs.write_text("\n".join(lines) + "\n")
    script = workdir / "bench.lua"
    script.write_text(_LUA)
    env = {
        **os.environ,
        "BENCH_REQS": str(reqs),
        "BENCH_THREADS": str(WRK_THREADS),
        "BENCH_CYCLE": "1" if cycle else "0",
        "BENCH_IDEM": "1" if idem else "0",
        "BENCH_PREFIX": f"{name}-{uuid.uuid4().hex[:8]}",
    }
    cmd = ["wrk", "-t", str(WRK_THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s"]
    cmd += ["--timeout", "10s", "-s", str(script), base]
    log(f"P2 {name}: wrk -c {CONNECTIONS} -d {seconds}s ...")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
    found = re.search(r"^BENCHJSON (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed: {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    raw = json.loads(found.group(1))
    out = {
        "requests": raw["requests"],
        "req_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": raw["non2xx"] + raw["socket_errors"],
        "non2xx": raw["non2xx"],
        "socket_errors": raw["socket_errors"],
        "codes": raw["codes"],
        "exhausted": raw["exhausted_threads"] > 0,
    }
    log(
        f"P2 {name}: {out['req_per_s']:.1f} req/s p50 {out['p50_ms']:.1f} ms "
        f"p99 {out['p99_ms']:.1f} ms errors {out['errors']} {out['codes'] or ''}"
        + (" (POOL EXHAUSTED)" if out["exhausted"] else "")
    )
    return out


def drain(base: str, token: str, timeout: float = 180) -> float:
    """Wait until the server has worked off the requests wrk left queued (a sync worker
    finishes every accepted request after wrk closed its connections); return seconds."""
    t0 = time.monotonic()
    for _ in range(3):
        req = urllib.request.Request(  # noqa: S310 - loopback
            base + "/api/v1/me", headers={"Authorization": token}
        )
        while True:
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - loopback
                    r.read()
                break
            except OSError:
                if time.monotonic() - t0 > timeout:
                    raise
                time.sleep(0.5)
    return time.monotonic() - t0


def periods(now: datetime) -> list[str]:
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    return ["all", f"{local.year}", f"{local.year}-{local.month:02d}"]


#: Each scenario's baseline, run right before it (issue 21): the scenario's req/s as a
#: ratio to that run. ``GET /api/v1/me`` against bare JSON, every write against the lean
#: double-entry POST (bench/lean.py), rankings against ``GET /api/v1/me``.
BASELINE_OF = {
    "me": "bare",
    "rating_settlement": "lean_post",
    "redemption": "lean_post",
    "rankings": "me",
    "project_page": "me",
}
TARGETS = {
    "me": ME_TARGET,
    "rating_settlement": WRITE_TARGET,
    "redemption": WRITE_TARGET,
    "rankings": RANKINGS_TARGET,
}


def measure_http(db_url: str, data: dict[str, Any], seconds: int, workdir: Path) -> dict[str, Any]:
    tokens = data["tokens"]

    def auth(uid: int) -> str:
        return f"Authorization: Bearer {tokens[uid]}"

    viewer = auth(data["viewer_id"])
    lean_engine = lean.make_engine(db_url)
    lean.create_tables(lean_engine)
    server = Server(db_url, workdir)
    bare_server = Server(db_url, workdir, app="bench.lean:create_app()", name="lean")
    res: dict[str, Any] = {"workers_setting": int(os.environ.get("WEB_CONCURRENCY", "3"))}
    try:
        server.wait_ready()
        bare_server.wait_ready()
        log(f"gunicorn up on {server.base} (pid {server.proc.pid}, workers {server.workers()})")
        log(f"lean app (baselines) up on {bare_server.base}")
        cookie = web_cookie(server.base, data["web_user"])
        scen: dict[str, Any] = {}
        me = [f"GET\t/api/v1/me\t{viewer}\t"]
        baselines = {
            "bare": (bare_server.base, ["GET\t/bare\t\t"]),
            "lean_post": (
                bare_server.base,
                [
                    "POST\t/post\t\t" + json.dumps({"member": 1 + i})
                    for i in range(lean.MEMBER_ACCOUNTS)
                ],
            ),
            "me": (server.base, me),
        }

        def baseline(name: str, secs: int) -> dict[str, Any]:
            base, lines = baselines[name]
            return run_wrk(base, workdir, name, lines, secs, cycle=True)

        def go(name: str, lines: list[str], secs: int, **kw: Any) -> dict[str, Any]:
            # The scenario's baseline again, right before it: its ratio compares two runs
            # seconds apart, not the scenario with a baseline taken minutes earlier (the
            # machine's speed and the database's state drift: run-to-run spreads of
            # 25-40 % were seen on one baseline alone).
            against = BASELINE_OF[name]
            adjacent = baseline(against, secs)
            out = run_wrk(server.base, workdir, name, lines, secs, **kw)
            out["drain_s"] = round(drain(server.base, viewer.split(": ", 1)[1]), 1)
            if out["drain_s"] > 1:
                log(f"P2 {name}: server drained its queue in {out['drain_s']} s")
            out["baseline"] = against
            out["baseline_req_per_s"] = adjacent["req_per_s"]
            out["baseline_p99_ms"] = adjacent["p99_ms"]
            return out

        run_wrk(server.base, workdir, "warmup", me, 2, cycle=True)
        baseline("bare", 2)
        baseline("lean_post", 2)
        scen["me"] = go("me", me, seconds, cycle=True)
        rate = [
            f"POST\t/api/v1/deliveries/{d}/ratings\t{auth(r)}\t" + json.dumps({"score": 5})
            for d, r in data["p2_deliveries"]
        ]
        scen["rating_settlement"] = go("rating_settlement", rate, seconds, cycle=False)
        redeem = [
            f"POST\t/api/v1/rewards/{data['reward_id']}/redemptions\t{auth(u)}\t"
            + json.dumps({"quantity": 1})
            for u in data["redeemer_ids"]
        ]
        scen["redemption"] = go("redemption", redeem, seconds, cycle=True, idem=True)
        ranks = [
            f"GET\t/api/v1/rankings?area_id={a}&period={p}\t{viewer}\t"
            for a in data["rank_areas"]
            for p in periods(datetime.now(UTC))
        ]
        scen["rankings"] = go("rankings", ranks, seconds, cycle=True)
        page = [f"GET\t/projects\tCookie: {cookie} | User-Agent: {BENCH_USER_AGENT}\t"]
        scen["project_page"] = go("project_page", page, seconds, cycle=True)
        workers = server.workers()
        rss = {pid: server.vm(pid, "VmHWM") for pid in workers}
        res["workers"] = len(workers)
        res["worker_peak_rss_mb"] = {str(k): round(v / 1024, 1) for k, v in rss.items()}
        res["p4_peak_rss_mb"] = round(max(rss.values()) / 1024, 1) if rss else None
        log(f"P4 worker VmHWM: {res['worker_peak_rss_mb']} MB")
    finally:
        server.stop()
        bare_server.stop()
        lean.drop_tables(lean_engine)
        lean_engine.dispose()
    for name, sc in scen.items():
        base_rps = sc["baseline_req_per_s"]
        sc["ratio"] = sc["req_per_s"] / base_rps if base_rps else 0.0
        target = TARGETS.get(name)  # the project page: latency and errors only
        sc["ratio_target"] = target
        sc["ratio_met"] = None if target is None else sc["ratio"] >= target
        sc["p99_met"] = sc["p99_ms"] <= P99_TARGET_MS
        sc["errors_met"] = sc["errors"] == 0 and not sc["exhausted"]
    res["scenarios"] = scen
    res["p4_met"] = res["p4_peak_rss_mb"] is not None and res["p4_peak_rss_mb"] <= RSS_TARGET_MB
    return res


# --- engines -----------------------------------------------------------------------


def _pg_admin(pg_url: str, sql: str) -> None:
    import psycopg

    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    admin = admin.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def server_version(url: str) -> str:
    with make_app(url).app_context():
        with db.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                version = "SQLite " + conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
            else:
                version = "PostgreSQL " + conn.exec_driver_sql("SHOW server_version").scalar_one()
        db.engine.dispose()
    return version


def run_engine(engine: str, size_name: str, args: argparse.Namespace) -> dict[str, Any]:
    size = dict(SIZES[size_name])
    if args.members:
        size["members"] = args.members
    if args.entries:
        size["entries"] = args.entries
    if args.seconds:
        size["seconds"] = args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="bench-run-"))
    pg_db = None
    try:
        if engine == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
            pg_db = url.rsplit("/", 1)[1]
            _pg_admin(url, f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            _pg_admin(url, f'CREATE DATABASE "{pg_db}"')
        started = datetime.now(UTC)
        result: dict[str, Any] = {
            "engine": engine,
            "size": size_name,
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "machine_start": machine(),
            "sizes": size,
        }
        log(f"{engine}: generate {size['members']} members / {size['entries']} entries")
        t0 = time.perf_counter()
        info = generate_data(url, size["members"], size["entries"])
        result["generate_s"] = round(time.perf_counter() - t0, 1)
        result["generated"] = {k: info[k] for k in ("entries", "transactions", "deliveries")}
        log(f"{engine}: generated in {result['generate_s']} s; seeding through the services")
        t0 = time.perf_counter()
        data = seed(url, size)
        set_password(url, data["web_user"])
        result["seed_s"] = round(time.perf_counter() - t0, 1)
        result["server_version"] = server_version(url)
        log(f"{engine}: seeded in {result['seed_s']} s; P1 ({size['p1_ops']} ops each)")
        result["p1"] = measure_p1(url, data, size["p1_ops"])
        result["http"] = measure_http(url, data, size["seconds"], workdir)
        result["machine_end"] = machine()
        return result
    finally:
        if pg_db is not None and not args.keep:
            _pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        if args.keep:
            log(f"kept {workdir}" + (f" and database {pg_db}" if pg_db else ""))
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- report ------------------------------------------------------------------------


def _cpu(p1: dict[str, Any], key: str) -> str:
    value = p1.get(key + "_cpu_ms")
    return "—" if value is None else f"{value:.2f}"


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


LABELS = {
    "baseline": "GET /api/v1/me (baseline)",
    "me": "GET /api/v1/me",
    "bare": "bare JSON (lean app)",
    "lean_post": "lean double-entry POST (lean app)",
    "rating_settlement": "POST rating → settlement",
    "redemption": "POST redemption",
    "rankings": "GET /api/v1/rankings",
    "project_page": "GET /projects (page)",
}


def render() -> str:
    lines = [
        BEGIN,
        "## P1, P2, P4 — throughput against baselines (issues 7 and 21)",
        "",
        "Generated by `python -m bench.run` (do not edit between the markers). P1: "
        "operations/s in-process, one transaction each, vs the hand-written SQLAlchemy Core "
        "settlement (`bench/lean.py`: the same rows as a settlement, in scratch copies of "
        "the tables, one transaction; target ≥ 50 %). P2: gunicorn (production config) + "
        f"wrk, {CONNECTIONS} connections on loopback. Every scenario runs right after its "
        "baseline, served by the same gunicorn settings: `GET /api/v1/me` against a bare "
        "JSON endpoint (target ≥ 40 %), every write against the lean double-entry POST "
        "of `bench/lean.py` (target ≥ 25 %), rankings against `GET /api/v1/me` (≥ 50 %); "
        "p99 ≤ 150 ms; zero non-2xx. P4: largest worker VmHWM after the HTTP run "
        "(≤ 150 MB). The rate limiter does not apply to these endpoints (login/rating-code "
        "throttles count failures only); the run sets `API_RATE_LIMIT=1000000/minute` and "
        "its own limiter key prefix anyway. Errors = non-2xx responses + socket errors "
        "(including wrk's 10 s request timeout); latencies are those of the requests "
        "completed within the run. Each delivery of the rating pool is rated once "
        "(its only beneficiary rates it, which settles it); redemptions rotate over 16 "
        "members, each request with its own `Idempotency-Key`; rankings rotate over a "
        "generated community, its street and the district x all / this year / this month. "
        "Results of runs before issue 21 (no `baseline` per scenario) compare with "
        "`GET /api/v1/me` and a one-row INSERT.",
        "",
    ]
    files = sorted(RESULTS.glob("run-*.json"))
    if not files:
        lines.append("_No results yet._")
    for f in files:
        r = json.loads(f.read_text())
        m0, m1 = r["machine_start"], r.get("machine_end", r["machine_start"])
        s = r["sizes"]
        lines += [
            f"### {r.get('server_version', r['engine'])} — {r['size']} "
            f"({s['members']:,} members, {r['generated']['entries']:,} generated entries)",
            "",
            f"- date: {r['date']}; command: `{r['command']}`",
            f"- machine: {m0['nproc']} CPU ({m0['cpu']}, {m0['arch']}); load average "
            f"{'/'.join(str(x) for x in m0['load'])} at start, "
            f"{'/'.join(str(x) for x in m1['load'])} at end"
            + (" — **loaded machine**, figures indicative" if m0["load"][0] > 1 else ""),
            f"- data: generate {r['generate_s']} s, service seeding {r['seed_s']} s "
            f"(P1 {s['p1_ops']} operations each; HTTP {s['seconds']} s per scenario, "
            f"rating pool {s['pool']} deliveries)",
            "",
        ]
        p1 = r["p1"]
        lines += [
            "| P1 in-process | ops/s | vs baseline | ≥ 50 % | ms/op | CPU ms/op |",
            "|---|---:|---:|---|---:|---:|",
            *(
                f"| {label} | {p1[k + '_per_s']:.1f} | "
                + (
                    "100 % | —"
                    if k == "baseline"
                    else f"{p1[k + '_ratio']:.1%} | {_mark(p1[k + '_met'])}"
                )
                + f" | {1000 / p1[k + '_per_s']:.2f} | {_cpu(p1, k)} |"
                for k, label in (
                    (
                        "baseline",
                        "hand-written Core settlement (baseline)"
                        if p1.get("baseline_kind") == "core_settlement"
                        else "Core INSERT, 1 row/transaction (baseline)",
                    ),
                    ("earn", "earning: settle → earn + rollups"),
                    ("redeem", "redemption"),
                )
            ),
            "",
            "CPU ms/op is the benchmark process's own CPU time (`time.process_time`): on "
            "SQLite the whole cost of an operation, on PostgreSQL the client side only; "
            "far less sensitive to the machine's load than ops/s.",
            "",
        ]
        h = r["http"]
        lines += [
            "| P2 over HTTP | req/s | its baseline, req/s right before | vs baseline | ratio target | "
            "p50 ms | p99 ms | p99 ≤ 150 | errors | zero errors |",
            "|---|---:|---:|---:|---|---:|---:|---|---:|---|",
        ]
        for name, sc in h["scenarios"].items():
            tgt = sc["ratio_target"]
            ratio_cell = "—" if tgt is None else f"≥ {tgt:.0%}: {_mark(sc['ratio_met'])}"
            err = (
                str(sc["errors"])
                + (" " + json.dumps(sc["codes"]) if sc["codes"] else "")
                + (" (pool exhausted)" if sc["exhausted"] else "")
            )
            adjacent = sc.get("baseline_req_per_s")
            against = LABELS.get(sc.get("baseline", "baseline"), "GET /api/v1/me")
            lines.append(
                f"| {LABELS.get(name, name)} | {sc['req_per_s']:.1f} | "
                f"{'—' if adjacent is None else f'{against}: {adjacent:.1f}'} | {sc['ratio']:.1%} | "
                f"{ratio_cell} | {sc['p50_ms']:.1f} | {sc['p99_ms']:.1f} | "
                f"{_mark(sc['p99_met'])} | {err} | {_mark(sc['errors_met'])} |"
            )
        lines += [
            "",
            f"P4: peak RSS (VmHWM) of the {h['workers']} workers after the run: "
            f"{', '.join(str(v) for v in h['worker_peak_rss_mb'].values())} MB; largest "
            f"**{h['p4_peak_rss_mb']} MB** — ≤ 150 MB {_mark(h['p4_met'])}.",
            "",
        ]
    lines += [
        "P3 (rankings read latency, server side) is measured by `python -m bench.rankings`; "
        "see its section.",
        END,
    ]
    return "\n".join(lines)


def write_doc() -> None:
    replace_section(BEGIN, END, render(), before="<!-- bench:rankings:begin -->")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (< 2 min per engine)")
    ap.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench_run"),
        help="PostgreSQL database to create, use and drop (default %(default)s)",
    )
    ap.add_argument("--members", type=int, default=0, help="override the size's members")
    ap.add_argument("--entries", type=int, default=0, help="override the size's entries")
    ap.add_argument("--seconds", type=int, default=0, help="override wrk seconds per scenario")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir / database")
    ap.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument(
        "--doc-only", action="store_true", help="rewrite the doc section from bench/results/"
    )
    args = ap.parse_args(argv)
    if args.doc_only:
        write_doc()
        return 0
    if shutil.which("wrk") is None:
        ap.error("wrk is not installed (apt-get install -y wrk)")
    size_name = "quick" if args.quick else "full"
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    command = "python -m bench.run " + " ".join(
        a if "://" not in a else "URL" for a in (argv or sys.argv[1:])
    )
    RESULTS.mkdir(exist_ok=True)
    for engine in engines:
        result = run_engine(engine, size_name, args)
        result["command"] = command.strip()
        out = RESULTS / f"run-{engine}-{size_name}.json"
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
        log(f"{engine}: wrote {out.relative_to(ROOT)}")
        if not args.no_doc:
            write_doc()
            log(f"updated {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
