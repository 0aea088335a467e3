"""Integrity signals benchmark (issue 15): server-side latency of one community's signals.

    python -m bench.integrity --url URL --runs 50

On a database built by ``bench.generate``, inside an app context, times
``services.integrity.signals(secretary, community)`` (wall clock around the service
call, no HTTP) for the community with the most deliveries in the signals' window, as
its secretary reads the page. Each call runs in its own read transaction (rolled back
after it). The queries start from that community's deliveries in the window
(``ix_deliveries_community_started``), so the figure should stay flat as the ledger
grows; compare the results at 100k and 10M entries.

The baseline, timed right before each signals call so both see the same load: the one
indexed read every call starts from (the count of the community's deliveries in the
window). Each figure is also given as a ratio to the baseline's (``p50_ratio``,
``p99_ratio``), which moves far less with the machine's load than milliseconds do.

Writes ``bench/results/integrity-<engine>-<entries>[-<label>].json`` (p50, p95, p99,
max in ms, the baseline's, the ratios, the community's deliveries in the window and the
number of signals by kind). ``--before FILE`` also times an older version of the service
in the same loop (each iteration: baseline, older, current), so both see the same load::

    git show 4e0c752:volunteer_market/services/integrity.py > /tmp/integrity_before.py
    python -m bench.integrity --url URL --runs 40 --before /tmp/integrity_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Area, Delivery, LedgerEntry, Role, RoleGrant, User, utcnow
from volunteer_market.services import integrity

from .generate import RESULTS, make_app
from .rankings import engine_version, machine


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def busiest(pick: str = "busiest") -> tuple[Area, User, int]:
    """The community with the most deliveries in the window (``pick="median"``: the
    one in the middle of the communities ranked by them), and its secretary."""
    since = utcnow() - integrity.WINDOW
    ranked = db.session.execute(
        sa.select(Delivery.community_id, sa.func.count())
        .where(Delivery.started_at >= since)
        .group_by(Delivery.community_id)
        .order_by(sa.func.count().desc(), Delivery.community_id)
    ).all()
    if not ranked:
        raise SystemExit("no delivery in the window: generate a database first")
    row = ranked[len(ranked) // 2] if pick == "median" else ranked[0]
    community = db.session.get(Area, row[0])
    secretary_id = db.session.scalar(
        sa.select(RoleGrant.user_id).where(
            RoleGrant.area_id == row[0], RoleGrant.role == Role.SECRETARY
        )
    )
    secretary = db.session.get(User, secretary_id)
    assert community is not None and secretary is not None
    return community, secretary, int(row[1])


def baseline_query(community: Area) -> int:
    """The baseline: the one indexed read every signals call starts from -- the count
    of the community's deliveries in the window (``ix_deliveries_community_started``)."""
    since = utcnow() - integrity.WINDOW
    return int(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(Delivery.community_id == community.id, Delivery.started_at >= since)
        )
        or 0
    )


def _stats(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_pct(times, 0.95), 2),
        "p99_ms": round(_pct(times, 0.99), 2),
        "max_ms": round(max(times), 2),
    }


def load_before(path: str) -> Any:
    """Import an older ``services/integrity.py`` (e.g. ``git show REV:...``) to time it
    in the same loop as the current one."""
    spec = importlib.util.spec_from_file_location("volunteer_market.services._before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def measure(runs: int, before: Any = None, pick: str = "busiest") -> dict[str, Any]:
    """Time the signals and, right before each call, the baseline (same load); with
    ``before`` (an older module) also its signals, in the same iteration."""
    community, secretary, in_window = busiest(pick)
    cid, sid = community.id, secretary.id
    times: list[float] = []
    base: list[float] = []
    cpus: list[float] = []
    old: list[float] = []
    old_cpus: list[float] = []
    found = 0
    kinds: dict[str, int] = {}
    for _i in range(runs + 5):
        area, actor = db.session.get(Area, cid), db.session.get(User, sid)
        assert area is not None and actor is not None
        _ = actor.grants  # loaded by authentication before a request's service call
        start = time.perf_counter()
        baseline_query(area)
        base.append((time.perf_counter() - start) * 1000)
        if before is not None:
            start, cpu = time.perf_counter(), time.process_time()
            before.signals(actor, area)
            old.append((time.perf_counter() - start) * 1000)
            old_cpus.append((time.process_time() - cpu) * 1000)
        start, cpu = time.perf_counter(), time.process_time()
        items = integrity.signals(actor, area)
        times.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        found = len(items)
        kinds = {}
        for s in items:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        db.session.rollback()
    times, base, cpus = times[5:], base[5:], cpus[5:]  # warm-up
    signals, baseline = _stats(times), _stats(base)
    compared: dict[str, Any] = {}
    if before is not None:
        old, old_cpus = old[5:], old_cpus[5:]
        was = _stats(old)
        compared["before"] = {
            **was,
            "cpu_p50_ms": round(statistics.median(old_cpus), 2),
            "cpu_p99_ms": round(_pct(old_cpus, 0.99), 2),
            "p50_ratio": round(was["p50_ms"] / max(baseline["p50_ms"], 0.01), 1),
            "p99_ratio": round(was["p99_ms"] / max(baseline["p99_ms"], 0.01), 1),
        }
    return {
        "community": pick,
        "community_id": cid,
        "deliveries_in_window": in_window,
        "signals": found,
        "signals_by_kind": kinds,
        **signals,
        # this process's CPU time per call: on SQLite the whole cost of the call, and far
        # less sensitive to a loaded machine than the wall clock
        "cpu_p50_ms": round(statistics.median(cpus), 2),
        "cpu_p99_ms": round(_pct(cpus, 0.99), 2),
        "baseline": baseline,
        "p50_ratio": round(signals["p50_ms"] / max(baseline["p50_ms"], 0.01), 1),
        "p99_ratio": round(signals["p99_ms"] / max(baseline["p99_ms"], 0.01), 1),
        **compared,
    }


def by_kind(rounds: int = 3, pick: str = "busiest") -> dict[str, dict[str, float]]:
    """Wall and CPU ms of each of the signals' queries alone (median of ``rounds``), to
    see where a call's time goes."""
    community, _secretary, _n = busiest(pick)
    since = utcnow() - integrity.WINDOW
    recent = (
        sa.select(Delivery.id)
        .where(Delivery.community_id == community.id, Delivery.started_at >= since)
        .scalar_subquery()
    )
    parts: dict[str, Any] = {
        "rating kinds (one statement)": lambda: integrity._rating_signals(recent),
        "odd_hours": lambda: integrity._odd_hours(community, since),
        "overlap": lambda: integrity._overlap(recent),
        "chronic_no_show": lambda: integrity._no_shows(recent),
        "rated_from_recorder": lambda: integrity._rated_from_recorder(recent),
        "disputed_callback": lambda: integrity._disputed_callbacks(recent),
    }
    walls: dict[str, list[float]] = {k: [] for k in parts}
    cpus: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(rounds):
        for name, call in parts.items():
            start, cpu = time.perf_counter(), time.process_time()
            call()
            walls[name].append((time.perf_counter() - start) * 1000)
            cpus[name].append((time.process_time() - cpu) * 1000)
        db.session.rollback()
    return {
        k: {
            "p50_ms": round(statistics.median(walls[k]), 1),
            "cpu_p50_ms": round(statistics.median(cpus[k]), 1),
        }
        for k in parts
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--label", default="", help="suffix of the result file (e.g. before)")
    ap.add_argument(
        "--before", default="", help="an older services/integrity.py to time in the same loop"
    )
    ap.add_argument(
        "--pick",
        choices=("busiest", "median"),
        default="busiest",
        help="the community: the most deliveries in the window, or the median one",
    )
    ap.add_argument(
        "--by-kind", action="store_true", help="also time each query of the signals alone"
    )
    args = ap.parse_args(argv)
    app = make_app(args.url)
    with app.app_context():
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) or 0
        info = {
            "engine": db.engine.dialect.name,
            "engine_version": engine_version(),
            "entries": entries,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "command": f"python -m bench.integrity --url URL --runs {args.runs}"
            + (f" --pick {args.pick}" if args.pick != "busiest" else "")
            + (" --before FILE" if args.before else "")
            + (" --by-kind" if args.by_kind else ""),
            "result": measure(
                args.runs, load_before(args.before) if args.before else None, args.pick
            ),
        }
        if args.by_kind:
            info["by_kind"] = by_kind(pick=args.pick)
        db.session.remove()
        db.engine.dispose()
    RESULTS.mkdir(exist_ok=True)
    suffix = f"-{args.label}" if args.label else ""
    if args.pick != "busiest":
        suffix = f"-{args.pick}{suffix}"
    (RESULTS / f"integrity-{info['engine']}-{entries}{suffix}.json").write_text(
        json.dumps(info, indent=1, ensure_ascii=False)
    )
    print(json.dumps(info["result"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
