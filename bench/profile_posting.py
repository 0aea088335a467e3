"""CPU and statements per posting (issue 7 P1): ``settlement.settle`` of one delivery and
``redemptions.request``, in-process, one transaction each, as in ``bench/run.py``'s P1;
and ``rate``: ``POST /api/v1/deliveries/{id}/ratings`` by the delivery's only beneficiary
(which settles it) through the Flask test client -- the whole request of P2's
rating -> settlement scenario, in-process, without gunicorn and the network.

    python -m bench.profile_posting sqlite:////tmp/prof.db 100
    python -m bench.profile_posting postgresql://postgres@127.0.0.1:5432/prof 100
    python -m bench.profile_posting URL 60 --profile settle    # pyinstrument tree (or rate)
    python -m bench.profile_posting URL 20 --sql               # the statements of one call

The database is emptied and recreated (every table dropped). Statements are counted with
a ``before_cursor_execute`` listener and include the actor's load, ``BEGIN`` and
``COMMIT``; three warm-up calls of each run first (compiled-statement cache).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from tests import conftest
from tests.factories import build_world
from volunteer_market import create_app
from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, Reward, User
from volunteer_market.services import redemptions, settlement

from .run import seed

OWNERS = 8


def fresh_world(url_text: str) -> Flask:
    """Empty the database at ``url_text`` (every table dropped), create the schema and the
    tests' world in it; return the (test-configured) app that did it."""
    url = sa.make_url(url_text)
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm", "-journal"):  # drop_all trips on the FK cycles
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
    app = create_app({**conftest.TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url_text})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        db.create_all()
        build_world()
        db.session.remove()
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("n", type=int, nargs="?", default=100)
    parser.add_argument("--profile", choices=("settle", "request", "rate"))
    parser.add_argument("--sql", action="store_true")
    args = parser.parse_args()
    n = args.n

    app = fresh_world(args.url)
    # bench.run's community; deliveries whose rating window (7 days) has closed, as in P1.
    data = seed(
        args.url,
        {"p1_ops": n + 3, "pool": n + 3},
        owners=OWNERS,
        redeemers=OWNERS,
        resident_count=4,
        member_grids=True,
    )
    deliveries = data["p1_deliveries"]
    rated = data["p2_deliveries"]  # (delivery id, its only beneficiary)
    tokens = data["tokens"]
    client = app.test_client()
    secretary_id, reward_id = data["secretary_id"], data["reward_id"]
    member_ids = data["redeemer_ids"]
    with app.app_context():
        statements: list[str] = []

        @sa.event.listens_for(db.engine, "before_cursor_execute")
        def _count(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
            statements.append(statement.split("\n")[0][:160])

        def settle_one(delivery_id: int) -> None:
            db.session.remove()  # like a request: a fresh session, the actor loaded again
            actor = db.session.get(User, secretary_id)
            with atomic():
                delivery = db.session.get(Delivery, delivery_id)
                settlement.settle(actor, delivery, confirm_unrated=True)

        def request_one(i: int) -> None:
            db.session.remove()
            member = db.session.get(User, member_ids[i % OWNERS])
            with atomic():
                item = db.session.get(Reward, reward_id)
                redemptions.request(member, item, 1, idempotency_key=f"prof-{i}")

        def rate_one(item: tuple[int, int]) -> None:
            delivery_id, resident_id = item
            db.session.remove()
            resp = client.post(
                f"/api/v1/deliveries/{delivery_id}/ratings",
                json={"score": 5},
                headers={"Authorization": f"Bearer {tokens[resident_id]}"},
            )
            assert resp.status_code == 201, resp.get_data(as_text=True)[:300]
            assert resp.get_json()["delivery_status"] == "settled", resp.get_json()

        for d in deliveries[:3]:
            settle_one(d)
        for item in rated[:3]:
            rate_one(item)
        for i in range(3):
            request_one(n + i)

        profiler = None
        if args.profile:
            import pyinstrument

            profiler = pyinstrument.Profiler(interval=0.0005)
        runs = (
            ("settle", settle_one, deliveries[3:]),
            ("request", request_one, range(n)),
            ("rate", rate_one, rated[3:]),
        )
        for name, call, items in runs:
            statements.clear()
            if profiler is not None and name == args.profile:
                profiler.start()
            c0 = time.process_time()
            for item in items:
                call(item)
            cpu_ms = (time.process_time() - c0) * 1000 / n
            if profiler is not None and profiler.is_running:
                profiler.stop()
            print(f"{name}: {cpu_ms:.2f} ms CPU per call, {len(statements) / n:.1f} statements")
            if args.sql:
                for line in statements[: len(statements) // n]:
                    print("   ", line)
        if profiler is not None:
            print(profiler.output_text(unicode=False, color=False))
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
