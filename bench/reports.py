"""Annual report benchmark (issue 16): server-side time of the report's rows.

    python -m bench.reports --url URL --runs 20

On a database built by ``bench.generate``, inside an app context, times (wall clock
around the service call, no HTTP) of ``services.evaluations.iter_rows(area, year)``
consumed in full (what a CSV/XLSX export and a JSON page compute) for a community, a
street and the district, for this year. Each call runs in its own read transaction.
Prints a JSON summary and writes ``bench/results/reports-<engine>-<entries>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Area, AreaKind, LedgerEntry, utcnow
from volunteer_market.services.evaluations.report import iter_rows

from .generate import RESULTS, make_app


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def measure(url: str, runs: int) -> dict[str, Any]:
    """Time the report of one community, one street and the district."""
    app = make_app(url)
    out: dict[str, Any] = {"engine": "postgresql" if url.startswith("postgres") else "sqlite"}
    with app.app_context():
        out["entries"] = int(db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) or 0)
        year = utcnow().year
        out["year"] = year
        picks = {}
        for kind in (AreaKind.COMMUNITY, AreaKind.STREET, AreaKind.DISTRICT):
            picks[kind.value] = db.session.scalars(
                sa.select(Area).where(Area.kind == kind).order_by(Area.id).limit(1)
            ).one()
        for name, area in picks.items():
            times, rows = [], 0
            for _ in range(runs if name != "district" else max(1, runs // 5)):
                db.session.rollback()
                t = time.perf_counter()
                rows = sum(1 for _r in iter_rows(area, year))
                times.append((time.perf_counter() - t) * 1000)
            out[name] = {
                "rows": rows,
                "runs": len(times),
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(_pct(times, 0.95), 1),
            }
        db.session.remove()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    result = measure(args.url, args.runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"reports-{result['engine']}-{result['entries']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
