"""The baselines of ``bench.run`` (issue 21, item 1): what the same machine, engine and
gunicorn settings do without the project's code in the way.

* :func:`create_app` -- a tiny Flask app served by gunicorn exactly like the project
  (``gunicorn -c gunicorn.conf.py 'bench.lean:create_app()'``) with two endpoints:

  - ``GET /bare``: a small JSON object, no database (the **bare JSON** baseline of
    ``GET /api/v1/me``);
  - ``POST /post``: a **lean double-entry posting** with SQLAlchemy Core in one
    transaction (``BEGIN IMMEDIATE`` on SQLite; the head row locked ``FOR UPDATE`` on
    PostgreSQL): lock the chain head, insert the transaction (with its sha256 chained to
    the previous one) ``RETURNING id``, insert both entries in one statement, move both
    balances (the member's with ``balance + :amount >= 0``), advance the head. The
    baseline of every write over HTTP (rating -> settlement, redemption).

* :func:`core_settlement` -- the **hand-written Core settlement** (the P1 baseline): the
  same rows a settlement of a one-participant delivery writes (delivery status, the
  settlement and its posting line, both account balances, the transaction and its two
  entries, the head, the ranking rollups of 3 areas x 4 periods with their score buckets
  and team rows, the annual rollups, one audit row, one notification), each table's
  columns copied from the project's own, in one transaction and as few statements as
  Core allows (multi-row inserts, ``RETURNING``, no reads but the head).

Both write only into ``lean_*`` scratch tables (:func:`create_tables`, dropped by
:func:`drop_tables`), never into the project's, so the generated data set stays valid.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from volunteer_market.database import engine_options
from volunteer_market.models import (
    AnnualProject,
    AnnualStat,
    AuditEntry,
    Delivery,
    LedgerAccount,
    LedgerEntry,
    LedgerHead,
    LedgerTransaction,
    Notification,
    RankingMember,
    RankingScoreCount,
    RankingTeam,
    Settlement,
    SettlementPosting,
)

MEMBER_ACCOUNTS = 64
SOURCE_ACCOUNT = 0
PERIODS = ("all", "2026", "2026-Q4", "2026-12")
AREAS = (1, 2, 3)  # community, street, district

METADATA = sa.MetaData()


def _copy(model: Any, name: str) -> sa.Table:
    """A scratch table with the columns (name, type, primary key) of ``model``'s table:
    the same row width, no foreign keys, triggers or checks (an enum is its VARCHAR)."""
    source: sa.Table = model.__table__
    columns = [
        sa.Column(
            c.name,
            sa.String(c.type.length) if isinstance(c.type, sa.Enum) else c.type,
            primary_key=c.primary_key,
            autoincrement=c.autoincrement if c.primary_key else False,
            nullable=not c.primary_key,
        )
        for c in source.columns
    ]
    return sa.Table(f"lean_{name}", METADATA, *columns)


ACCOUNTS = _copy(LedgerAccount, "accounts")
TRANSACTIONS = _copy(LedgerTransaction, "transactions")
ENTRIES = _copy(LedgerEntry, "entries")
HEAD = _copy(LedgerHead, "head")
DELIVERIES = _copy(Delivery, "deliveries")
SETTLEMENTS = _copy(Settlement, "settlements")
POSTINGS = _copy(SettlementPosting, "settlement_postings")
MEMBERS = _copy(RankingMember, "ranking_members")
BUCKETS = _copy(RankingScoreCount, "ranking_score_counts")
TEAMS = _copy(RankingTeam, "ranking_teams")
ANNUAL = _copy(AnnualStat, "annual_stats")
ANNUAL_PROJECTS = _copy(AnnualProject, "annual_projects")
AUDIT = _copy(AuditEntry, "audit_log")
NOTIFICATIONS = _copy(Notification, "notifications")


def create_tables(engine: Engine, deliveries: int = 0) -> None:
    """(Re)create the scratch tables with the accounts, the head and ``deliveries``
    recorded deliveries (ids 1..n) for :func:`core_settlement`."""
    drop_tables(engine)
    METADATA.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            ACCOUNTS.insert(),
            [
                {
                    "id": i,
                    "kind": "issuance" if i == SOURCE_ACCOUNT else "member_available",
                    "user_id": None if i == SOURCE_ACCOUNT else i,
                    "community_id": 1,
                    "owner_key": f"lean:{i}",
                    "balance": 0,
                    "earned": 0,
                    "created_at": now,
                }
                for i in range(MEMBER_ACCOUNTS + 1)
            ],
        )
        conn.execute(
            HEAD.insert(),
            {"id": 1, "last_hash": "0" * 64, "transaction_count": 0, "updated_at": now},
        )
        if deliveries:
            conn.execute(
                DELIVERIES.insert(),
                [
                    {
                        "id": i,
                        "project_id": 1,
                        "community_id": 1,
                        "recorded_by_id": 1,
                        "started_at": now,
                        "ended_at": now,
                        "status": "recorded",
                        "rating_deadline": now,
                        "created_at": now,
                    }
                    for i in range(1, deliveries + 1)
                ],
            )


def drop_tables(engine: Engine) -> None:
    METADATA.drop_all(engine, checkfirst=True)


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _lock_head(conn: Connection) -> tuple[int | None, str]:
    row = conn.execute(
        sa.select(HEAD.c.last_transaction_id, HEAD.c.last_hash)
        .where(HEAD.c.id == 1)
        .with_for_update()
    ).one()
    return row[0], row[1]


def _digest(prev_hash: str, content: dict[str, Any]) -> str:
    raw = json.dumps({**content, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _post(conn: Connection, kind: str, member: int, amount: int, key: str, now: datetime) -> int:
    """Move ``amount`` from the source account to member ``member``'s: transaction,
    entries, balances, head. Return the transaction's id."""
    _last_id, last_hash = _lock_head(conn)
    content = {"kind": kind, "key": key, "member": member, "amount": amount, "at": now.isoformat()}
    digest = _digest(last_hash, content)
    tx_id = conn.execute(
        TRANSACTIONS.insert().returning(TRANSACTIONS.c.id),
        {
            "kind": kind,
            "idempotency_key": key,
            "member_id": member,
            "community_id": 1,
            "created_at": now,
            "prev_hash": last_hash,
            "hash": digest,
        },
    ).scalar_one()
    conn.execute(
        ENTRIES.insert().values(
            [
                {"transaction_id": tx_id, "account_id": a, "amount": m, "created_at": now}
                for a, m in ((SOURCE_ACCOUNT, -amount), (member, amount))
            ]
        )
    )
    moved = conn.execute(
        ACCOUNTS.update()
        .where(ACCOUNTS.c.id == member, ACCOUNTS.c.balance + amount >= 0)
        .values(balance=ACCOUNTS.c.balance + amount, earned=ACCOUNTS.c.earned + amount)
    ).rowcount
    if moved != 1:
        raise RuntimeError("lean posting: the member's balance would go negative")
    conn.execute(
        ACCOUNTS.update()
        .where(ACCOUNTS.c.id == SOURCE_ACCOUNT)
        .values(balance=ACCOUNTS.c.balance - amount)
    )
    conn.execute(
        HEAD.update()
        .where(HEAD.c.id == 1)
        .values(
            last_transaction_id=tx_id,
            last_hash=digest,
            transaction_count=HEAD.c.transaction_count + 1,
            updated_at=now,
        )
    )
    return int(tx_id)


def lean_posting(conn: Connection, member: int, key: str) -> int:
    """The lean double-entry POST: 1 point to ``member``; return the transaction id."""
    return _post(conn, "earn", member, 1, key, datetime.now(UTC))


def _add_rollup(conn: Connection, table: sa.Table, owner: str, rows: list[dict]) -> list[Any]:
    """Add points and minutes to rollup rows (one multi-row upsert); return
    ``(area_id, period_key, points)`` of each row after it."""
    ins = _insert(conn, table)
    stmt = ins.on_conflict_do_update(
        index_elements=[table.c.area_id, table.c.period_key, table.c[owner]],
        set_={
            "points": table.c.points + ins.excluded.points,
            "minutes": table.c.minutes + ins.excluded.minutes,
            "reached_at": ins.excluded.reached_at,
        },
    ).returning(table.c.area_id, table.c.period_key, table.c.points)
    return list(conn.execute(stmt, rows).all())


def core_settlement(conn: Connection, delivery_id: int, member: int, points: int = 10) -> int:
    """Settle lean delivery ``delivery_id`` for its one participant ``member`` (a member
    account id, 1..64): the rows of ``services.settlement.settle``. Return the
    transaction id. Raises if the delivery was settled already."""
    now = datetime.now(UTC)
    _lock_head(conn)  # the first lock, as in the project (lock order)
    claimed = conn.execute(
        DELIVERIES.update()
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == "recorded")
        .values(status="settled")
    ).rowcount
    if claimed != 1:
        raise RuntimeError(f"lean delivery {delivery_id} is not open")
    settlement_id = conn.execute(
        SETTLEMENTS.insert().returning(SETTLEMENTS.c.id),
        {
            "delivery_id": delivery_id,
            "community_id": 1,
            "policy_id": 1,
            "policy_version": 1,
            "ratings_count": 1,
            "score_sum": 5,
            "average_score": 5,
            "multiplier": 1,
            "confirmed_unrated": True,
            "total_points": points,
            "total_minutes": 60,
            "settled_by_id": 1,
            "settled_at": now,
        },
    ).scalar_one()
    tx_id = _post(conn, "earn", member, points, f"earn:{delivery_id}:{member}", now)
    # ranking rollups: member rows (returning the new totals), buckets, team rows
    row = {"points": points, "minutes": 60, "reached_at": now}
    keys = [(a, k) for a in AREAS for k in PERIODS]
    totals = _add_rollup(
        conn,
        MEMBERS,
        "user_id",
        [
            {"area_id": a, "period_key": k, "user_id": member, "eligible": True, **row}
            for a, k in keys
        ],
    )
    old = [(a, k, int(p) - points) for a, k, p in totals if int(p) - points > 0]
    if old:
        key = sa.tuple_(BUCKETS.c.area_id, BUCKETS.c.period_key, BUCKETS.c.points)
        conn.execute(
            BUCKETS.update()
            .where(key.in_(sa.bindparam("keys", expanding=True)))
            .values(members=BUCKETS.c.members - 1),
            {"keys": old},
        )
        conn.execute(
            BUCKETS.delete().where(
                key.in_(sa.bindparam("keys", expanding=True)), BUCKETS.c.members == 0
            ),
            {"keys": old},
        )
    bins = _insert(conn, BUCKETS)
    conn.execute(
        bins.on_conflict_do_update(
            index_elements=[BUCKETS.c.area_id, BUCKETS.c.period_key, BUCKETS.c.points],
            set_={"members": BUCKETS.c.members + bins.excluded.members},
        ),
        [{"area_id": a, "period_key": k, "points": int(p), "members": 1} for a, k, p in totals],
    )
    _add_rollup(
        conn,
        TEAMS,
        "project_id",
        [{"area_id": a, "period_key": k, "project_id": 1, **row} for a, k in keys],
    )
    ains = _insert(conn, ANNUAL)
    conn.execute(
        ains.on_conflict_do_update(
            index_elements=[ANNUAL.c.community_id, ANNUAL.c.year, ANNUAL.c.user_id],
            set_={
                "deliveries": ANNUAL.c.deliveries + 1,
                "ratings_count": ANNUAL.c.ratings_count + 1,
                "score_sum": ANNUAL.c.score_sum + 5,
            },
        ),
        {
            "community_id": 1,
            "year": now.year,
            "user_id": member,
            "deliveries": 1,
            "ratings_count": 1,
            "score_sum": 5,
            "points_spent": 0,
            "points_expired": 0,
        },
    )
    pins = _insert(conn, ANNUAL_PROJECTS)
    conn.execute(
        pins.on_conflict_do_update(
            index_elements=[
                ANNUAL_PROJECTS.c.community_id,
                ANNUAL_PROJECTS.c.year,
                ANNUAL_PROJECTS.c.user_id,
                ANNUAL_PROJECTS.c.project_id,
            ],
            set_={"deliveries": ANNUAL_PROJECTS.c.deliveries + 1},
        ),
        {"community_id": 1, "year": now.year, "user_id": member, "project_id": 1, "deliveries": 1},
    )
    conn.execute(
        POSTINGS.insert(),
        {
            "settlement_id": settlement_id,
            "delivery_id": delivery_id,
            "user_id": member,
            "minutes": 60,
            "counted_minutes": 60,
            "points": points,
            "transaction_id": tx_id,
        },
    )
    conn.execute(
        AUDIT.insert(),
        {
            "actor_id": 1,
            "action": "delivery.settle",
            "object_type": "delivery",
            "object_id": delivery_id,
            "area_id": 1,
            "detail": {"points": points},
            "created_at": now,
        },
    )
    conn.execute(
        NOTIFICATIONS.insert(),
        {
            "user_id": member,
            "kind": "points.earned",
            "object_type": "delivery",
            "object_id": delivery_id,
            "params": {"points": points},
            "created_at": now,
        },
    )
    return tx_id


# --- the HTTP app ------------------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """An engine like the project's: its options, WAL, busy timeout and ``BEGIN
    IMMEDIATE`` for every transaction on SQLite."""
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, **engine_options(url, 5000))
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=5000"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_app(url: str | None = None) -> Any:
    """The lean app (``LEAN_DATABASE_URL``); its tables come from :func:`create_tables`."""
    from flask import Flask, jsonify, request

    app = Flask("bench_lean")
    engine = make_engine(url or os.environ["LEAN_DATABASE_URL"])
    app.extensions["lean_engine"] = engine  # disposed by whoever ends the app
    counter = {"n": 0}

    @app.get("/bare")
    def bare() -> Any:
        return jsonify({"id": 1, "username": "bare", "display_name": "基线", "roles": []})

    @app.post("/post")
    def post() -> Any:
        body = request.get_json(silent=True) or {}
        member = int(body.get("member", 1))
        if not 1 <= member <= MEMBER_ACCOUNTS:
            return jsonify({"detail": "member out of range"}), 422
        counter["n"] += 1
        key = f"lean-{os.getpid()}-{counter['n']}"
        with engine.begin() as conn:
            tx_id = lean_posting(conn, member, key)
        return jsonify({"transaction_id": tx_id}), 201

    return app
