"""Annual report and year-close benchmark (issue 16): server-side times, each as a
ratio to a baseline measured in the same run, right before it.

    python -m bench.reports --url URL --runs 10

On a database built by ``bench.generate``, inside an app context (wall clock around
the service call, no HTTP), each call in its own transaction, rolled back after it:

* **report** -- ``services.evaluations.report.iter_rows(area, year)`` consumed in full
  (what a CSV/XLSX export and a JSON page compute) for the first community, the first
  street and the district, this year. *Baseline*: reading the same area's member list
  (``users`` joined to their active member grants in the subtree, each member once: id,
  username, name, home unit), consumed in full -- the least any per-member report must
  read.
* **page** -- ``services.evaluations.report.page_rows(district, year, page, 50)``, the
  JSON page an officer opens (the first page and the last), which builds only the
  communities the page overlaps. *Baseline*: counting the district's members
  (``COUNT(DISTINCT user_id)`` of its active member grants) -- the least a page that
  shows the total must read.
* **export** -- the district's report as the CSV and the XLSX bytes a download sends
  (``http.exports.csv_bytes`` / ``xlsx_bytes`` over ``iter_rows``). *Baseline*: the
  district's member list, as for the report.
* **close** -- ``services.evaluations.close_year`` of the first community for last
  year, as its secretary (the report rows read, frozen as ``evaluation_rows``, the
  audit entry), rolled back. *Baseline*: a SQLAlchemy Core ``executemany`` INSERT of
  the same number of rows (same columns' worth) into a scratch table, rolled back.

``--before FILE`` (an older ``services/evaluations/report.py``, e.g. ``git show
REV:volunteer_market/services/evaluations/report.py > /tmp/report_before.py``) also
times that version's district report against the current one, the two alternating
(``district_before``: ``median_ms`` the older, ``baseline_median_ms`` the current).

Baseline and measured call alternate run by run, so both see the same machine load.
Prints a JSON summary and writes ``bench/results/reports-<engine>-<entries>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.http.exports import csv_bytes, xlsx_bytes
from volunteer_market.models import (
    Area,
    AreaKind,
    LedgerEntry,
    Role,
    RoleGrant,
    User,
    utcnow,
)
from volunteer_market.services.evaluations import FIELDS, close_year
from volunteer_market.services.evaluations.report import iter_rows, page_rows

from .generate import RESULTS, make_app
from .rankings import engine_version, machine

SCRATCH = "bench_close_baseline"


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    db.session.rollback()
    t = time.perf_counter()
    out = fn()
    ms = (time.perf_counter() - t) * 1000
    db.session.rollback()
    return ms, out


def _member_list(area: Area) -> int:
    stmt = (
        sa.select(User.id, User.username, User.display_name, User.home_unit)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .join(Area, Area.id == RoleGrant.area_id)
        .where(
            RoleGrant.role == Role.MEMBER,
            RoleGrant.revoked_at.is_(None),
            Area.path.startswith(area.path, autoescape=True),
        )
        .distinct()  # a member with two member grants in the subtree is read once
    )
    return sum(1 for _r in db.session.execute(stmt))


def _member_count(area: Area) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.count(sa.distinct(RoleGrant.user_id)))
            .join(Area, Area.id == RoleGrant.area_id)
            .where(
                RoleGrant.role == Role.MEMBER,
                RoleGrant.revoked_at.is_(None),
                Area.path.startswith(area.path, autoescape=True),
            )
        )
        or 0
    )


def load_before(path: str) -> Any:
    """Import an older ``services/evaluations/report.py`` to time it in the same loop."""
    name = "volunteer_market.services.evaluations._report_before"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(_pct(times, 0.95), 1),
    }


def _pair(runs: int, measured: Callable[[], Any], baseline: Callable[[], Any]) -> dict:
    """Alternate baseline and measured call ``runs`` times; return both and the ratio."""
    m_times, b_times, out, base_out = [], [], None, None
    for _ in range(runs):
        ms, base_out = _timed(baseline)
        b_times.append(ms)
        ms, out = _timed(measured)
        m_times.append(ms)
    m, b = _summary(m_times), _summary(b_times)
    return {
        "rows": out,
        "baseline_rows": base_out,
        "runs": runs,
        **m,
        "baseline_median_ms": b["median_ms"],
        "baseline_p95_ms": b["p95_ms"],
        "ratio": round(m["median_ms"] / b["median_ms"], 1) if b["median_ms"] else None,
    }


def _scratch() -> sa.Table:
    table = sa.Table(
        SCRATCH,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evaluation_id", sa.Integer),
        sa.Column("user_id", sa.Integer),
        sa.Column("username", sa.String(64)),
        sa.Column("display_name", sa.String(100)),
        sa.Column("home_unit", sa.String(255)),
        sa.Column("community_id", sa.Integer),
        sa.Column("hours", sa.Numeric(10, 1)),
        sa.Column("deliveries", sa.Integer),
        sa.Column("projects_led", sa.Integer),
        sa.Column("projects_joined", sa.Integer),
        sa.Column("average_score", sa.Numeric(4, 2)),
        sa.Column("points_earned", sa.BigInteger),
        sa.Column("points_spent", sa.BigInteger),
        sa.Column("points_expired", sa.BigInteger),
        sa.Column("correction", sa.BigInteger),
        sa.Column("rank_community", sa.Integer),
        sa.Column("rank_street", sa.Integer),
    )
    table.create(db.engine, checkfirst=True)
    return table


def measure(url: str, runs: int, before: Any = None) -> dict[str, Any]:
    """Time the report of one community, one street and the district, the district's
    JSON pages and exports, and a close."""
    app = make_app(url)
    out: dict[str, Any] = {"engine": "postgresql" if url.startswith("postgres") else "sqlite"}
    with app.app_context():
        out["engine_version"] = engine_version()
        out["machine"] = machine()
        out["entries"] = int(db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) or 0)
        out["members"] = int(
            db.session.scalar(
                sa.select(sa.func.count(sa.distinct(RoleGrant.user_id))).where(
                    RoleGrant.role == Role.MEMBER
                )
            )
            or 0
        )
        year = utcnow().year
        out["year"] = year
        picks = {}
        for kind in (AreaKind.COMMUNITY, AreaKind.STREET, AreaKind.DISTRICT):
            picks[kind.value] = db.session.scalars(
                sa.select(Area).where(Area.kind == kind).order_by(Area.id).limit(1)
            ).one()
        for name, area in picks.items():
            n = runs if name != "district" else max(1, runs // 5)
            out[name] = _pair(
                n,
                lambda area=area: sum(1 for _r in iter_rows(area, year)),
                lambda area=area: _member_list(area),
            )
        district = picks["district"]
        if before is not None:
            # the older and the current version alternate, each warmed up once first, so
            # that neither profits from the pages the other brought into the cache
            _timed(lambda: sum(1 for _r in before.iter_rows(district, year)))  # warm-up
            out["district_before"] = _pair(
                max(2, runs // 2),
                lambda: sum(1 for _r in before.iter_rows(district, year)),
                lambda: sum(1 for _r in iter_rows(district, year)),
            )
            out["district_before"]["baseline"] = "the current version, alternating"
        total = page_rows(district, year, 1, 50)[1]
        for name, page in (("page_first", 1), ("page_last", max(1, -(-total // 50)))):
            out[name] = _pair(
                runs,
                lambda page=page: len(page_rows(district, year, page, 50)[0]),
                lambda: _member_count(district),
            )
            out[name]["page"] = page
        for name, write in (("export_csv", csv_bytes), ("export_xlsx", None)):

            def export(write=write) -> int:
                rows = iter_rows(district, year)
                if write is None:
                    return len(xlsx_bytes(FIELDS, rows, str(year)))
                return len(write(FIELDS, rows))

            out[name] = _pair(max(1, runs // 5), export, lambda: _member_list(district))
            out[name]["bytes"] = out[name].pop("rows")
        # the year's close of the first community, as its secretary, for last year
        community = picks["community"]
        secretary = db.session.scalars(
            sa.select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(RoleGrant.role == Role.SECRETARY, RoleGrant.area_id == community.id)
            .limit(1)
        ).one()
        table = _scratch()
        frozen = [
            {c.name: None for c in table.columns if c.name != "id"}
            | {"evaluation_id": 1, "user_id": i, "username": f"u{i}", "display_name": "某某某"}
            for i in range(1, 1 + sum(1 for _r in iter_rows(community, year - 1)))
        ]
        db.session.rollback()

        def close() -> int:
            close_year(secretary, community.id, year - 1)
            return len(frozen)

        def insert() -> int:
            db.session.execute(table.insert(), frozen)
            return len(frozen)

        out["close"] = _pair(runs, close, insert)
        out["close"]["year"] = year - 1
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {SCRATCH}"))
        db.session.remove()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--before", default="", help="an older report.py to time in the same loop")
    args = ap.parse_args(argv)
    result = measure(args.url, args.runs, load_before(args.before) if args.before else None)
    result["command"] = f"python -m bench.reports --url URL --runs {args.runs}" + (
        " --before FILE" if args.before else ""
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"reports-{result['engine']}-{result['entries']}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
