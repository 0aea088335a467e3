"""Build a city-scale benchmark database in bulk.

    python -m bench.generate --url URL --members N --entries M [--verify]

Creates the schema (``db.create_all``; existing tables are dropped first) and loads:
the area tree (1 district, 10 streets, 100 communities, 2 grids each), one officer
(the recorder of deliveries), ``N`` members (each a member of one community, half of
them also of a grid there; a few suspended or with an ended grant), 5 approved
projects per community, settled deliveries with 1-3 participants and one ``earn``
per (delivery, participant) -- issuance -> member available, 2 entries each, with
``minutes`` -- spread over the last two years with a Zipf skew of member activity
(a few very active members, many occasional ones).

The ledger rows are what ``services.ledger._post`` would write for the same earns in
time order: same idempotency keys, ``created_at``, entry order (legs sorted by account
id), ``services.ledger.hash_content`` over the same fields, chained from
``GENESIS_HASH``; cached balances and ``earned`` are the sums; the head holds the
last id/hash/count. Rollups come from ``services.rankings.rebuild()`` itself.
Bulk paths: PostgreSQL ``COPY`` (psycopg ``cursor.copy``), SQLite ``executemany``.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from volunteer_market import create_app
from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import GENESIS_HASH, LedgerHead
from volunteer_market.services import rankings
from volunteer_market.services.ledger import hash_content

RESULTS = Path(__file__).parent / "results"
STREETS = 10
COMMUNITIES_PER_STREET = 10
GRIDS_PER_COMMUNITY = 2
PROJECTS_PER_COMMUNITY = 5
#: Zipf exponent of member activity (rank r gets weight 1 / r**s).
ZIPF_S = 0.9
BATCH = 20_000
YEARS = 2


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
        pct = 100 * self.done / self.total
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
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": False})


def _copy_pg(conn: Any, table: sa.Table, columns: list[str], rows: list[tuple]) -> None:
    raw = conn.connection.driver_connection
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cur, cur.copy(sql) as cp:
        for row in rows:
            cp.write_row(row)


def _naive(value: Any) -> Any:
    # SQLite stores UTCDateTime as naive UTC (models.types.UTCDateTime); PG keeps tz.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def bulk(conn: Any, name: str, columns: list[str], rows: Any, total: int, label: str) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) in batches with a progress bar."""
    table = db.metadata.tables[name]
    pg = conn.dialect.name == "postgresql"
    bar = Progress(label, total)
    it = iter(rows)
    if not pg:
        sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        raw = conn.connection.driver_connection
    while True:
        batch = list(itertools.islice(it, BATCH))
        if not batch:
            break
        if pg:
            _copy_pg(conn, table, columns, batch)
        else:
            raw.executemany(sql, [tuple(_naive(v) for v in r) for r in batch])
        bar.add(len(batch))
    bar.finish()


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


def bulk_rollups(
    conn: Any,
    earns: list[tuple],
    ancestors: dict[int, tuple[int, ...]],
    grid_of: dict[int, int],
    granted_at: datetime,
    revoked_at: dict[int, datetime],
    project_of: dict[int, int],
) -> dict[str, int]:
    """Write the ranking rollups of ``earns`` exactly as ``rankings.rebuild()`` would
    (same contributions: community + ancestors + the member's grid when the grid grant
    was active at the earn, periods from ``rankings.period_keys`` in Asia/Shanghai,
    ``reached_at`` = latest posting; team rows on community + ancestors; buckets of
    rows with points > 0). ``tests/bench`` checks it against ``rebuild()``."""
    members: dict[tuple, list] = {}
    teams: dict[tuple, list] = {}

    def add(totals: dict[tuple, list], key: tuple, pts: int, mins: int, at: datetime) -> None:
        row = totals.get(key)
        if row is None:
            totals[key] = [pts, mins, at]
        else:
            row[0] += pts
            row[1] += mins
            if at > row[2]:
                row[2] = at

    bar = Progress("rollups (compute)", len(earns))
    for i, (at, u, cid, dlv, minutes, pts) in enumerate(earns, start=1):
        keys = rankings.period_keys(at, rankings.DEFAULT_TIMEZONE)
        areas = set(ancestors[cid])
        grid = grid_of.get(u)
        if grid is not None and granted_at <= at and (u not in revoked_at or revoked_at[u] > at):
            areas.add(grid)
        for a in areas:
            for k in keys:
                add(members, (a, k, u), pts, minutes, at)
        for a in ancestors[cid]:
            for k in keys:
                add(teams, (a, k, project_of[dlv]), pts, minutes, at)
        if i % 10_000 == 0:
            bar.add(10_000)
    bar.add(len(earns) % 10_000)
    bar.finish()
    buckets: dict[tuple, int] = {}
    for (a, k, _u), (pts, _m, _at) in members.items():
        if pts > 0:
            buckets[(a, k, pts)] = buckets.get((a, k, pts), 0) + 1
    cols = ["area_id", "period_key", "user_id", "points", "minutes", "reached_at"]
    bulk(
        conn,
        "ranking_members",
        cols,
        ((*key, *v) for key, v in members.items()),
        len(members),
        "ranking_members",
    )
    cols[2] = "project_id"
    bulk(
        conn,
        "ranking_teams",
        cols,
        ((*key, *v) for key, v in teams.items()),
        len(teams),
        "ranking_teams",
    )
    bulk(
        conn,
        "ranking_score_counts",
        ["area_id", "period_key", "points", "members"],
        ((*key, n) for key, n in buckets.items()),
        len(buckets),
        "ranking_score_counts",
    )
    return {"members": len(members), "teams": len(teams), "buckets": len(buckets)}


def generate(
    url: str,
    members: int,
    entries: int,
    seed: int = 7,
    now: datetime | None = None,
    rollups: str = "bulk",
):
    """Build the data set; return a dict of sizes and timings. ``rollups``: ``bulk``
    (computed here, written with COPY/executemany) or ``rebuild`` (the service's
    ``rankings.rebuild()``)."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=365 * YEARS)
    t0 = time.perf_counter()
    app = make_app(url)
    timings: dict[str, float] = {}
    with app.app_context():
        db.drop_all()
        db.create_all()
        engine = db.engine
        with engine.begin() as conn:
            # --- areas ------------------------------------------------------------------
            areas: list[tuple] = []
            communities: list[int] = []
            grids_of: dict[int, list[int]] = {}
            nid = itertools.count(1)
            d = next(nid)
            areas.append((d, "汉阳区", "district", None, f"/{d}/", 0))
            for s in range(STREETS):
                sid = next(nid)
                areas.append((sid, f"街道{s + 1}", "street", d, f"/{d}/{sid}/", 1))
                for c in range(COMMUNITIES_PER_STREET):
                    cid = next(nid)
                    communities.append(cid)
                    areas.append(
                        (cid, f"社区{s + 1}-{c + 1}", "community", sid, f"/{d}/{sid}/{cid}/", 2)
                    )
                    grids_of[cid] = []
                    for g in range(GRIDS_PER_COMMUNITY):
                        gid = next(nid)
                        grids_of[cid].append(gid)
                        areas.append(
                            (gid, f"网格{g + 1}", "grid", cid, f"/{d}/{sid}/{cid}/{gid}/", 3)
                        )
            bulk(
                conn,
                "areas",
                ["id", "name", "kind", "parent_id", "path", "depth", "timezone", "created_at"],
                (a + ("Asia/Shanghai", start - timedelta(days=30)) for a in areas),
                len(areas),
                "areas",
            )

            # --- users and grants -------------------------------------------------------
            since = start - timedelta(days=1)
            officer = 1
            member_ids = list(range(2, members + 2))
            community_of = {u: communities[rng.randrange(len(communities))] for u in member_ids}
            suspended = set(rng.sample(member_ids, max(1, members // 1000)))
            ended = set(rng.sample(member_ids, max(1, members // 500))) - suspended

            def users() -> Any:
                yield (officer, "officer", "!bench", "区管理员", True, 1, since)
                for u in member_ids:
                    yield (u, f"m{u}", "!bench", f"党员{u}", u not in suspended, 1, since)

            bulk(
                conn,
                "users",
                [
                    "id",
                    "username",
                    "password_hash",
                    "display_name",
                    "is_active",
                    "session_version",
                    "created_at",
                ],
                users(),
                members + 1,
                "users",
            )
            grid_of = {
                u: rng.choice(grids_of[community_of[u]]) for u in member_ids if rng.random() < 0.5
            }

            def grants() -> Any:
                gid = itertools.count(1)
                yield (next(gid), officer, "officer", d, since, None)
                for u in member_ids:
                    revoked = now - timedelta(days=10) if u in ended else None
                    yield (next(gid), u, "member", community_of[u], since, revoked)
                    if u in grid_of:
                        yield (next(gid), u, "member", grid_of[u], since, revoked)

            bulk(
                conn,
                "role_grants",
                ["id", "user_id", "role", "area_id", "granted_at", "revoked_at"],
                grants(),
                1 + members + len(grid_of),
                "role_grants",
            )

            # --- projects -------------------------------------------------------------
            projects_of: dict[int, list[int]] = {}
            project_rows = []
            pid = itertools.count(1)
            for cid in communities:
                projects_of[cid] = []
                for _k in range(PROJECTS_PER_COMMUNITY):
                    p = next(pid)
                    projects_of[cid].append(p)
                    project_rows.append(
                        (p, cid, officer, f"项目{p}", "基准测试项目", "elderly", "event",
                         30, 1, 120, "[]", "[]", "approved", since, since)
                    )  # fmt: skip
            bulk(
                conn,
                "projects",
                ["id", "community_id", "owner_id", "title", "description", "category", "mode",
                 "capacity", "team_size", "planned_minutes", "skills", "target_groups", "status",
                 "created_at", "updated_at"],
                project_rows,
                len(project_rows),
                "projects",
            )  # fmt: skip

            # --- deliveries and earns (in memory, then sorted by time) ----------------
            t1 = time.perf_counter()
            n_earns = entries // 2
            weights = [1 / (r**ZIPF_S) for r in range(1, members + 1)]
            order = member_ids[:]
            rng.shuffle(order)  # activity rank is independent of id and community
            cum = list(itertools.accumulate(weights))
            by_comm: dict[int, list[int]] = {c: [] for c in communities}
            for u in member_ids:
                by_comm[community_of[u]].append(u)
            span = (now - start).total_seconds() - 3 * 86400
            deliveries: list[tuple] = []
            earns: list[tuple] = []  # (created_at, member, community, delivery, minutes, points)
            did = 0
            bar = Progress("plan earns", n_earns)
            while len(earns) < n_earns:
                lead = order[bisect.bisect_left(cum, rng.random() * cum[-1])]
                cid = community_of[lead]
                team = {lead}
                for _ in range(rng.choice((0, 0, 1, 2))):
                    team.add(rng.choice(by_comm[cid]))
                team_l = sorted(team)[: n_earns - len(earns)]
                did += 1
                began = start + timedelta(seconds=rng.random() * span)
                minutes = rng.choice((30, 60, 60, 90, 120, 120, 180, 240))
                ended_at = began + timedelta(minutes=minutes)
                deadline = ended_at + timedelta(days=2)
                deliveries.append(
                    (did, rng.choice(projects_of[cid]), cid, officer, began, ended_at,
                     "settled", deadline, ended_at)
                )  # fmt: skip
                for u in team_l:
                    at = deadline + timedelta(microseconds=rng.randrange(3_600_000_000))
                    earns.append((at, u, cid, did, minutes, max(1, minutes // 10)))
                bar.add(len(team_l))
            bar.finish()
            earns.sort()
            bulk(
                conn,
                "deliveries",
                ["id", "project_id", "community_id", "recorded_by_id", "started_at", "ended_at",
                 "status", "rating_deadline", "created_at"],
                deliveries,
                len(deliveries),
                "deliveries",
            )  # fmt: skip

            # --- accounts -------------------------------------------------------------
            issuance = {cid: i + 1 for i, cid in enumerate(communities)}
            wallet: dict[int, int] = {}
            first_at: dict[int, datetime] = {}
            for at, u, *_ in earns:
                if u not in wallet:
                    wallet[u] = len(issuance) + len(wallet) + 1
                    first_at[u] = at
            balance: dict[int, int] = dict.fromkeys(
                itertools.chain(issuance.values(), wallet.values()), 0
            )
            for _at, u, cid, _d, _m, pts in earns:
                balance[issuance[cid]] -= pts
                balance[wallet[u]] += pts

            def accounts() -> Any:
                for cid, aid in issuance.items():
                    yield (aid, "issuance", None, cid, f"issuance:u:c{cid}", balance[aid], 0, since)
                for u, aid in wallet.items():
                    b = balance[aid]
                    yield (aid, "member_available", u, None, f"member_available:u{u}:c", b, b,
                           first_at[u])  # fmt: skip

            bulk(
                conn,
                "ledger_accounts",
                ["id", "kind", "user_id", "community_id", "owner_key", "balance", "earned",
                 "created_at"],
                accounts(),
                len(issuance) + len(wallet),
                "ledger_accounts",
            )  # fmt: skip

            # --- transactions (hash chain) and entries --------------------------------
            prev = GENESIS_HASH
            tx_rows: list[tuple] = []
            entry_rows: list[tuple] = []
            bar = Progress("hash chain", len(earns))
            for i, (at, u, cid, dlv, minutes, pts) in enumerate(earns, start=1):
                key = f"earn:d{dlv}:u{u}"
                legs = sorted([(issuance[cid], -pts), (wallet[u], pts)])
                digest = hash_content(
                    kind="earn",
                    idempotency_key=key,
                    member_id=u,
                    community_id=cid,
                    delivery_id=dlv,
                    redemption_id=None,
                    reverses_id=None,
                    minutes=minutes,
                    policy_id=None,
                    actor_id=None,
                    reason=None,
                    created_at=at,
                    entries=legs,
                    prev_hash=prev,
                )
                tx_rows.append(("earn", key, u, cid, dlv, minutes, at, prev, digest))
                entry_rows.append((2 * i - 1, i, legs[0][0], legs[0][1], at))
                entry_rows.append((2 * i, i, legs[1][0], legs[1][1], at))
                prev = digest
                if i % 10_000 == 0:
                    bar.add(10_000)
            bar.add(len(earns) % 10_000)
            bar.finish()
            bulk(
                conn,
                "ledger_transactions",
                ["id", "kind", "idempotency_key", "member_id", "community_id", "delivery_id",
                 "minutes", "created_at", "prev_hash", "hash"],
                ((i, *r) for i, r in enumerate(tx_rows, start=1)),
                len(tx_rows),
                "ledger_transactions",
            )  # fmt: skip
            bulk(
                conn,
                "ledger_entries",
                ["id", "transaction_id", "account_id", "amount", "created_at"],
                entry_rows,
                len(entry_rows),
                "ledger_entries",
            )
            if rollups == "bulk":
                t2 = time.perf_counter()
                ancestors = {a[0]: tuple(int(x) for x in a[4].strip("/").split("/")) for a in areas}
                project_of = {dv[0]: dv[1] for dv in deliveries}
                revoked_at = {u: now - timedelta(days=10) for u in ended}
                counts = bulk_rollups(
                    conn, earns, ancestors, grid_of, since, revoked_at, project_of
                )
                timings["rollups_s"] = time.perf_counter() - t2
            head_at = earns[-1][0] if earns else now
            conn.execute(
                LedgerHead.__table__.insert().values(
                    id=1,
                    last_transaction_id=len(earns) or None,
                    last_hash=prev,
                    transaction_count=len(earns),
                    updated_at=head_at,
                )
            )
            _set_sequences(conn)
            del tx_rows, entry_rows
            timings["load_s"] = time.perf_counter() - t1
        if conn.dialect.name == "postgresql":
            with engine.connect() as c2:
                c2.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        if rollups == "rebuild":  # the service's own recomputation (slow, exact)
            t2 = time.perf_counter()
            sys.stderr.write("rankings.rebuild() ...\n")
            with atomic():
                counts = rankings.rebuild()
            timings["rollups_s"] = time.perf_counter() - t2
        with engine.connect() as c3:
            if c3.dialect.name == "postgresql":
                c3.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
            else:
                c3.exec_driver_sql("ANALYZE")
        db.session.remove()
        engine.dispose()
    timings["total_s"] = time.perf_counter() - t0
    return {
        "engine": "postgresql" if url.startswith("postgres") else "sqlite",
        "members": members,
        "entries": 2 * len(earns),
        "transactions": len(earns),
        "deliveries": len(deliveries),
        "earners": len(wallet),
        "rollups": counts,
        **{k: round(v, 1) for k, v in timings.items()},
    }


#: Checks of other aggregates whose rows the generator does not write yet
#: (settlement records of deliveries); skipped by ``--verify``, reported as such.
SKIPPED_CHECKS = frozenset({"settlements"})


def verify(url: str) -> Any:
    """Run every ``ledger verify`` check except :data:`SKIPPED_CHECKS`; return the
    first violation or None."""
    from volunteer_market.services import ledger_verify

    app = make_app(url)
    with app.app_context():
        names = [n for n in ledger_verify.check_names() if n not in SKIPPED_CHECKS]
        found = ledger_verify.verify(names)
        db.session.remove()
        db.engine.dispose()
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rollups", choices=("bulk", "rebuild"), default="bulk")
    ap.add_argument("--verify", action="store_true", help="run ledger verify afterwards")
    args = ap.parse_args(argv)
    info = generate(args.url, args.members, args.entries, args.seed, rollups=args.rollups)
    info["command"] = "python -m bench.generate " + " ".join(
        a if not a.startswith(("sqlite", "postgres")) else "URL" for a in (argv or sys.argv[1:])
    )
    if args.verify:
        t = time.perf_counter()
        found = verify(args.url)
        info["verify_s"] = round(time.perf_counter() - t, 1)
        info["verify"] = "ok" if found is None else str(found)
        info["verify_skipped"] = sorted(SKIPPED_CHECKS)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"generate-{info['engine']}-{args.members}-{args.entries}.json"
    out.write_text(json.dumps(info, indent=1, ensure_ascii=False))
    print(json.dumps(info, ensure_ascii=False))
    return 0 if info.get("verify", "ok") == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
