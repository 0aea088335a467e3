"""Postings of several communities at once (issue 21, item 4): the per-community chains.

    python -m bench.chains [--pg-url URL] [--seconds 4] [--repeat 3] [--hold-ms 0,20] [--no-doc]

On a throw-away PostgreSQL database (``--pg-url``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/chain_bench``; dropped and recreated):
8 communities, one member in each. Then, for ``n`` = 1, 2, 4, 8 worker *processes*
(each its own app, engine and connection), every worker posts secretary adjustments
(``services.ledger.adjust``: head lock, account lookups, guarded balance UPDATEs,
transaction with its hash, entries, head, audit and notification -- one ``atomic()``
each) for ``--seconds`` after a one-second warm-up, in two layouts (each point
measured ``--repeat`` times, rounds interleaved, the median kept: the machine may be
shared):

* **spread**: worker ``i`` posts in community ``i`` (``n`` communities, ``n`` chains);
* **one community**: every worker posts in community 0 (one chain: what every posting
  of the district did before, when all of them took the single ledger head).

Figures are postings/s and the ratio to the 1-worker run of the same layout, measured
in the same run (the baseline). While the workers run, the parent samples
``pg_stat_activity`` every 20 ms: the share of the workers' backend samples that wait
on a lock (``wait_event_type = 'Lock'``: a row lock on a head, a transaction id) tells
whether postings queue behind each other or only share the CPU.

``--hold-ms`` (a list) adds ``pg_sleep`` of that many milliseconds inside each posting
transaction, after the head lock: a stand-in for the time a real posting holds its
head while it is not using this machine's CPU (network round trips to a remote
database server, a busy disk). With 0 the run is CPU-bound on small machines.

Writes ``bench/results/chains.json`` and the ``bench:chains`` section of
``docs/benchmarks.md`` (``--no-doc`` to skip).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.database import atomic
from volunteer_market.extensions import db

from .run import machine

RESULTS = Path(__file__).resolve().parent / "results" / "chains.json"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
WORKERS = (1, 2, 4, 8)
COMMUNITIES = 8


def log(msg: str) -> None:
    sys.stderr.write(f"[bench.chains {datetime.now(UTC):%H:%M:%S}] {msg}\n")
    sys.stderr.flush()


def make_app(url: str) -> Any:
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "TESTING": False,
            "PASSWORD_HASH_MEMORY_KIB": 8192,
            "PASSWORD_HASH_TIME_COST": 1,
        }
    )


def _pg_admin(pg_url: str, sql: str) -> None:
    import psycopg

    admin = pg_url.rsplit("/", 1)[0] + "/postgres"
    admin = admin.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def setup(url: str) -> list[tuple[int, int]]:
    """Create the schema and 8 communities with a member each; return their ids."""
    from volunteer_market.models import AreaKind, Role
    from volunteer_market.services import areas as area_service
    from volunteer_market.services import users as user_service

    name = url.rsplit("/", 1)[1]
    _pg_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(url, f'CREATE DATABASE "{name}"')
    app = make_app(url)
    out: list[tuple[int, int]] = []
    with app.app_context():
        db.create_all()
        with atomic():
            district = area_service.create_area(
                None, name="区", kind=AreaKind.DISTRICT, parent_id=None
            )
            street = area_service.create_area(
                None, name="街道", kind=AreaKind.STREET, parent_id=district.id
            )
            for i in range(COMMUNITIES):
                c = area_service.create_area(
                    None, name=f"社区{i}", kind=AreaKind.COMMUNITY, parent_id=street.id
                )
                u = user_service.create_user(
                    None,
                    username=f"m{i}",
                    password="password123",  # noqa: S106 - throw-away bench users
                    display_name=f"m{i}",
                )
                user_service.grant_role(None, u, Role.MEMBER, c)
                out.append((c.id, u.id))
        db.engine.dispose()
    return out


def worker(
    url: str, community_id: int, member_id: int, hold_ms: int, window: Any, go: Any, q: Any
) -> None:
    """Start up, report ready, wait for ``go``; then post adjustments until the window's
    end and report the postings inside it (``window`` = shared ``[start, stop]``)."""
    from volunteer_market.models import Area, User
    from volunteer_market.services import ledger

    app = make_app(url)
    with app.app_context():
        member = db.session.get(User, member_id)
        community = db.session.get(Area, community_id)
        assert member is not None
        db.session.rollback()
        with atomic():  # warm up: connection, compiled statements
            ledger.adjust(None, member, 1, "bench", community, idempotency_key=uuid.uuid4().hex)
        q.put("ready")
        go.wait()
        start, stop = window[0], window[1]
        counted, busy = 0, 0.0
        while True:
            t0 = time.time()
            if t0 >= stop:
                break
            with atomic():
                ledger.adjust(None, member, 1, "bench", community, idempotency_key=uuid.uuid4().hex)
                if hold_ms:
                    db.session.execute(sa.text("SELECT pg_sleep(:s)"), {"s": hold_ms / 1000})
            t1 = time.time()
            if t0 >= start:
                counted += 1
                busy += t1 - t0
        db.engine.dispose()
    q.put((counted, busy))


def sample_waits(url: str, until: float, out: dict[str, int]) -> None:
    """Count the bench backends' samples: active, and waiting on a lock."""
    engine = sa.create_engine(url)
    stmt = sa.text(
        "SELECT count(*) FILTER (WHERE state = 'active' OR wait_event_type = 'Lock'),"
        " count(*) FILTER (WHERE wait_event_type = 'Lock')"
        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    )
    with engine.connect() as conn:
        while time.time() < until:
            busy, waiting = conn.execute(stmt).one()
            conn.rollback()
            out["samples"] += int(busy)
            out["lock_waits"] += int(waiting)
            time.sleep(0.02)
    engine.dispose()


def measure(
    url: str, pairs: list[tuple[int, int]], n: int, spread: bool, hold_ms: int, seconds: float
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    go = ctx.Event()
    window = ctx.Array("d", [0.0, 0.0])
    procs = []
    for i in range(n):
        community_id, _member = pairs[i if spread else 0]
        member_id = pairs[i][1]
        p = ctx.Process(target=worker, args=(url, community_id, member_id, hold_ms, window, go, q))
        p.start()
        procs.append(p)
    for _p in procs:
        assert q.get(timeout=120) == "ready"
    start = time.time() + 1.0  # a one-second warm-up with every worker posting
    stop = start + seconds
    window[0], window[1] = start, stop
    go.set()
    waits = {"samples": 0, "lock_waits": 0}
    time.sleep(max(0.0, start - time.time()))
    sampler = threading.Thread(target=sample_waits, args=(url, stop, waits))
    sampler.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(60)
    sampler.join()
    postings = sum(c for c, _b in results)
    busy = sum(b for _c, b in results)
    return {
        "workers": n,
        "layout": "spread" if spread else "one",
        "hold_ms": hold_ms,
        "postings": postings,
        "per_s": round(postings / seconds, 1),
        "ms_per_posting": round(1000 * busy / postings, 2) if postings else None,
        "lock_wait_share": round(waits["lock_waits"] / waits["samples"], 3)
        if waits["samples"]
        else 0.0,
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def verify_clean(url: str) -> bool:
    from volunteer_market.services import verify as lv

    app = make_app(url)
    with app.app_context():
        ok = lv.verify(["balanced", "cached_balance", "hash_chain", "head"]) is None
        db.engine.dispose()
    return ok


def render(data: dict[str, Any]) -> str:
    lines = [
        "<!-- bench:chains:start -->",
        f"Measured {data['at']} on {data['machine']['nproc']} CPUs ({data['machine']['cpu']}),"
        f" {data['server']}, {data['seconds']} s per point, median of {data['repeat']}"
        " interleaved rounds; command:"
        f" `{data['command']}`. Ratio = postings/s over the 1-worker run of the same layout"
        " and hold, in the same run. *Lock waits* = share of the workers' backend samples"
        " (`pg_stat_activity`, every 20 ms) waiting on a lock.",
        "",
        "| hold | workers | spread: postings/s | ratio | lock waits |"
        " one community: postings/s | ratio | lock waits |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = data["rows"]
    for hold in sorted({r["hold_ms"] for r in rows}):
        base = {
            lay: next(
                r["per_s"]
                for r in rows
                if r["hold_ms"] == hold and r["layout"] == lay and r["workers"] == 1
            )
            for lay in ("spread", "one")
        }
        for n in WORKERS:
            cells = [f"{hold} ms", str(n)]
            for lay in ("spread", "one"):
                r = next(
                    r
                    for r in rows
                    if r["hold_ms"] == hold and r["layout"] == lay and r["workers"] == n
                )
                ratio = r["per_s"] / base[lay] if base[lay] else 0
                cells += [
                    f"{r['per_s']:.0f}",
                    f"{ratio:.2f}x",
                    f"{100 * r['lock_wait_share']:.0f} %",
                ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Ledger verified clean after the run: {data['verified']}.",
        "<!-- bench:chains:end -->",
    ]
    return "\n".join(lines)


def write_doc(data: dict[str, Any]) -> None:
    text = DOC.read_text()
    block = render(data)
    pattern = re.compile(r"<!-- bench:chains:start -->.*?<!-- bench:chains:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = (
            text.rstrip("\n")
            + "\n\n## Postings of several communities at once: `bench.chains`\n\n"
            + block
            + "\n"
        )
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/chain_bench")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3, help="rounds per point (median kept)")
    ap.add_argument(
        "--hold-ms", default="0,20", help="comma-separated pg_sleep inside each posting"
    )
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    url = args.pg_url
    pairs = setup(url)
    log(f"seeded {len(pairs)} communities on {url}")
    points = [
        (hold, spread, n)
        for hold in [int(x) for x in args.hold_ms.split(",") if x.strip()]
        for spread in (True, False)
        for n in WORKERS
    ]
    rounds: dict[tuple[int, bool, int], list[dict[str, Any]]] = {p: [] for p in points}
    for r in range(args.repeat):
        for hold, spread, n in points:
            row = measure(url, pairs, n, spread, hold, args.seconds)
            log(f"round {r + 1}: {json.dumps(row)}")
            rounds[(hold, spread, n)].append(row)
    rows = []
    for key in points:
        got = sorted(rounds[key], key=lambda row: row["per_s"])
        median = dict(got[len(got) // 2])
        median["rounds_per_s"] = [row["per_s"] for row in rounds[key]]
        rows.append(median)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        server = "PostgreSQL " + conn.exec_driver_sql("SHOW server_version").scalar_one()
    engine.dispose()
    data = {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "server": server,
        "seconds": args.seconds,
        "repeat": args.repeat,
        "command": "python -m bench.chains " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": rows,
        "verified": verify_clean(url),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    if not args.no_doc:
        write_doc(data)
    print(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
