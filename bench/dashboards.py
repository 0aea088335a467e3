"""Community dashboard benchmark: server-side latency of one community's dashboard.

    python -m bench.dashboards --url URL --runs 30

On a database built by ``bench.generate``, inside an app context, times
``services.dashboards.dashboard(secretary, community, period)`` (wall clock around the
service call, no HTTP) for the community with the most settlements, for the year of its
newest settlement, as its secretary reads the page. Each call runs in its own read
transaction (rolled back after it). Every query is an aggregate bounded by the period
(settlements by ``ix_settlements_community_id_settled_at``, needs by community), so the
figure depends on the community's own activity in the period, not on the ledger's size.

Writes ``bench/results/dashboards-<engine>-<entries>.json`` (p50, p95, p99, max in ms, the
community's settlements in the period).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Area, LedgerEntry, Role, RoleGrant, Settlement, User
from volunteer_market.services import dashboards
from volunteer_market.zones import area_zone

from .generate import RESULTS, make_app
from .rankings import engine_version, machine


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def busiest() -> tuple[Area, User, str, int]:
    """The community with the most settlements, its secretary, the year of its newest."""
    row = db.session.execute(
        sa.select(Settlement.community_id, sa.func.count(), sa.func.max(Settlement.settled_at))
        .group_by(Settlement.community_id)
        .order_by(sa.func.count().desc(), Settlement.community_id)
        .limit(1)
    ).first()
    if row is None:
        raise SystemExit("no settlement: generate a database first")
    community = db.session.get(Area, row[0])
    secretary_id = db.session.scalar(
        sa.select(RoleGrant.user_id).where(
            RoleGrant.area_id == row[0], RoleGrant.role == Role.SECRETARY
        )
    )
    secretary = db.session.get(User, secretary_id) if secretary_id else None
    assert community is not None and secretary is not None
    newest = row[2]
    if isinstance(newest, str):  # SQLite returns the stored text for max()
        newest = datetime.fromisoformat(newest)
    year = str(newest.astimezone(area_zone(community)).year)
    in_period = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Settlement)
        .where(
            Settlement.community_id == community.id,
            Settlement.settled_at >= dashboards.parse_period(year, community).start,
            Settlement.settled_at < dashboards.parse_period(year, community).end,
        )
    )
    return community, secretary, year, int(in_period or 0)


def measure(runs: int) -> dict[str, Any]:
    community, secretary, year, in_period = busiest()
    cid, sid = community.id, secretary.id
    times: list[float] = []
    result: dict[str, Any] = {}
    for _i in range(runs + 3):
        area, actor = db.session.get(Area, cid), db.session.get(User, sid)
        assert area is not None and actor is not None
        _ = actor.grants  # loaded by authentication before a request's service call
        start = time.perf_counter()
        result = dashboards.dashboard(actor, area, year)
        times.append((time.perf_counter() - start) * 1000)
        db.session.rollback()
    times = times[3:]  # warm-up
    return {
        "community_id": cid,
        "period": year,
        "settlements_in_period": in_period,
        "points_in_period": sum(r["points"] for r in result["points_by_month"]),
        "members": result["members"],
        "active_members": result["active_members"],
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_pct(times, 0.95), 2),
        "p99_ms": round(_pct(times, 0.99), 2),
        "max_ms": round(max(times), 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="")
    ap.add_argument("--runs", type=int, default=30)
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
            "command": f"python -m bench.dashboards --url URL --runs {args.runs}",
            "result": measure(args.runs),
        }
        db.session.remove()
        db.engine.dispose()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"dashboards-{info['engine']}-{entries}.json").write_text(
        json.dumps(info, indent=1, ensure_ascii=False)
    )
    print(json.dumps(info["result"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
