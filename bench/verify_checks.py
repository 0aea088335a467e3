"""Run ``ledger verify`` checks one at a time on a (large) database, with their times.

    python -m bench.verify_checks sqlite:////tmp/gen_10m.db
    python -m bench.verify_checks postgresql+psycopg://postgres@127.0.0.1:5432/gen_10m \\
        --checks hash_chain,ranking_rollups

``flask ledger verify`` runs every check in one go and stops at the first violation;
at 10M entries that takes 20-30 minutes, most of it ``ranking_rollups`` and
``hash_chain``. This runs the chosen checks (default: all, in the registry's order)
each on its own (``services.verify.verify([name])``), prints a line per check as it
ends, and merges the results into ``bench/results/verify-<engine>-<entries>.json``
(so that checks run on different days add up). Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import time

import sqlalchemy as sa

from .generate import RESULTS, make_app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--checks", default="", help="comma-separated names (default: all)")
    args = ap.parse_args(argv)
    app = make_app(args.url)
    failed = False
    with app.app_context():
        from volunteer_market.extensions import db
        from volunteer_market.services import verify as verifier

        known = verifier.check_names()
        names = [n for n in args.checks.split(",") if n] or known
        unknown = sorted(set(names) - set(known))
        if unknown:
            ap.error(f"unknown checks {unknown}; known: {', '.join(known)}")
        engine = db.engine.dialect.name
        entries = db.session.execute(sa.text("SELECT COUNT(*) FROM ledger_entries")).scalar_one()
        db.session.rollback()
        path = RESULTS / f"verify-{engine}-{entries}.json"
        results = json.loads(path.read_text()) if path.exists() else {}
        for name in names:
            t, c = time.perf_counter(), time.process_time()
            found = verifier.verify([name])
            db.session.rollback()
            results[name] = {
                "result": "ok" if found is None else str(found),
                "s": round(time.perf_counter() - t, 1),
                "cpu_s": round(time.process_time() - c, 1),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
            failed |= found is not None
            print(name, json.dumps(results[name], ensure_ascii=False), flush=True)
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {path}")
        db.session.remove()
        db.engine.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
