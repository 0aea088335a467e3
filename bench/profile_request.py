"""CPU, statements and round trips of one ``GET /api/v1/me`` (issue 21 item 3), in-process,
against the bare JSON endpoint of ``bench.lean`` measured the same way in the same run.

Both apps are built with the settings ``bench.run``'s gunicorn gets (``VM_ENV=production``,
the limiter on Redis, ``API_RATE_LIMIT=1000000/minute``), and called through
``app.test_client()`` -- the WSGI stack without gunicorn and the network, so what is
measured is the app's own cost per request.

    python -m bench.profile_request sqlite:////tmp/prof.db 2000
    python -m bench.profile_request postgresql://postgres@127.0.0.1:5432/prof 2000
    python -m bench.profile_request URL 500 --profile        # pyinstrument tree of /me
    python -m bench.profile_request URL 20 --sql             # the statements of one call
    python -m bench.profile_request URL 1000 --cprofile      # cProfile of /me by own time
    BENCH_GC=freeze python -m bench.profile_request URL      # gc.freeze() first (or off)

The database is emptied and recreated (every table dropped). Statements are counted with
a ``before_cursor_execute`` listener; "round trips" adds what the driver does without a
cursor (PostgreSQL: pool pre-ping, ``BEGIN`` is sent with the first statement by psycopg,
``ROLLBACK``/``COMMIT``) as counted by the engine's ``begin``/``rollback``/``commit``
events. Redis round trips are counted by wrapping the limiter storage's client.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REDIS = "redis://127.0.0.1:6379"


def _env(url: str) -> None:
    os.environ.update(
        {
            "VM_ENV": "production",
            "DATABASE_URL": url,
            "LEAN_DATABASE_URL": url,
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "RATELIMIT_STORAGE_URI": os.environ.get("BENCH_RATELIMIT_STORAGE_URI", REDIS),
            "RATELIMIT_KEY_PREFIX": "bench-" + uuid.uuid4().hex,
            "API_RATE_LIMIT": "1000000/minute",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("n", type=int, nargs="?", default=2000)
    parser.add_argument("--profile", action="store_true", help="pyinstrument tree of /me")
    parser.add_argument("--cprofile", action="store_true", help="cProfile of /me by own time")
    parser.add_argument("--sql", action="store_true")
    args = parser.parse_args()
    n = args.n
    _env(args.url)

    from volunteer_market import create_app
    from volunteer_market.extensions import db, limiter

    from . import lean
    from .profile_posting import fresh_world
    from .run import seed

    url = sa.make_url(args.url)
    setup = fresh_world(args.url)
    with setup.app_context():
        db.engine.dispose()
    data = seed(args.url, {"p1_ops": 1, "pool": 1}, owners=4, redeemers=4, resident_count=4)
    token = next(iter(data["tokens"].values()))
    if os.environ.get("BENCH_TOKEN_FILE"):  # for a wrk run against the same database
        Path(os.environ["BENCH_TOKEN_FILE"]).write_text(token)

    app = create_app()  # production settings, as gunicorn's wsgi:app
    bare = lean.create_app()
    client, bare_client = app.test_client(), bare.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    counts = {"statements": 0, "begin": 0, "commit": 0, "rollback": 0, "redis": 0}
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _count(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
            counts["statements"] += 1
            statements.append(statement.split("\n")[0][:160])

        for name in ("begin", "commit", "rollback"):
            sa.event.listen(
                engine, name, lambda conn, _n=name: counts.__setitem__(_n, counts[_n] + 1)
            )
        _count_redis(limiter, counts)

    def me() -> None:
        resp = client.get("/api/v1/me", headers=headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]

    def bare_one() -> None:
        resp = bare_client.get("/bare")
        assert resp.status_code == 200

    for _ in range(20):
        me()
        bare_one()
    if os.environ.get("BENCH_GC") == "freeze":
        gc.freeze()
    elif os.environ.get("BENCH_GC") == "off":
        gc.disable()
    profiler = None
    if args.profile:
        import pyinstrument

        profiler = pyinstrument.Profiler(interval=0.0002)
    results: dict[str, list[float]] = {"bare": [], "me": []}
    for rnd in range(3):  # alternated, the median of three
        for name, call in (("bare", bare_one), ("me", me)):
            for key in counts:
                counts[key] = 0
            statements.clear()
            if profiler is not None and name == "me" and rnd == 0:
                profiler.start()
            c0 = time.process_time()
            for _ in range(n):
                call()
            cpu = (time.process_time() - c0) * 1000 / n
            if profiler is not None and profiler.is_running:
                profiler.stop()
            results[name].append(cpu)
            if name == "me":
                per = {k: v / n for k, v in counts.items()}
    bare_ms = sorted(results["bare"])[1]
    me_ms = sorted(results["me"])[1]
    print(f"engine: {url.get_backend_name()}, {n} calls x 3 rounds (medians)")
    print(f"bare JSON: {bare_ms:.3f} ms CPU per call")
    print(
        f"/api/v1/me: {me_ms:.3f} ms CPU per call ({bare_ms / me_ms:.1%} of bare JSON's rate); "
        f"per call: {per['statements']:.1f} statements, begin {per['begin']:.1f}, "
        f"commit {per['commit']:.1f}, rollback {per['rollback']:.1f}, redis {per['redis']:.1f}"
    )
    if args.cprofile:
        import cProfile
        import pstats

        cprof = cProfile.Profile()
        cprof.runcall(lambda: [me() for _ in range(n)])
        pstats.Stats(cprof).sort_stats("tottime").print_stats(45)
    if args.sql:
        for line in statements[: len(statements) // n]:
            print("   ", line)
    if profiler is not None:
        print(
            profiler.output_text(
                unicode=False, color=False, show_all=bool(os.environ.get("BENCH_SHOW_ALL"))
            )
        )


def _count_redis(limiter: Any, counts: dict[str, int]) -> None:
    """Count the limiter's Redis commands (each is a round trip; a pipeline is one)."""
    storage = getattr(limiter, "_storage", None) or getattr(limiter.limiter, "storage", None)
    client = getattr(storage, "storage", None)
    if client is None or not hasattr(client, "execute_command"):  # memory:// has no client
        return
    original = client.execute_command

    def execute_command(*a: Any, **kw: Any) -> Any:
        counts["redis"] += 1
        return original(*a, **kw)

    client.execute_command = execute_command
    original_pipeline = client.pipeline

    def pipeline(*a: Any, **kw: Any) -> Any:
        pipe = original_pipeline(*a, **kw)
        original_execute = pipe.execute

        def execute(*ea: Any, **ekw: Any) -> Any:
            counts["redis"] += 1
            return original_execute(*ea, **ekw)

        pipe.execute = execute
        return pipe

    client.pipeline = pipeline


if __name__ == "__main__":
    main()
