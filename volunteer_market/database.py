"""Engine set-up and the one way to write: :func:`atomic`.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout. Python's sqlite3 driver normally opens transactions lazily and lets
reads happen outside them; we take over: the driver is put in autocommit mode
and SQLAlchemy's ``begin`` event emits ``BEGIN`` ourselves -- ``BEGIN IMMEDIATE``
inside :func:`atomic`, so a transaction that will write holds the write lock
before it reads anything (no lost updates, no ``database is locked`` on
upgrade from a read lock). Read-only requests use a plain deferred ``BEGIN``
and never block writers in WAL mode.

We prefer the ``pysqlite3`` wheel, which bundles a current SQLite (>= 3.51.3;
Debian's 3.40 has the WAL-reset corruption bug) and fall back to the standard
library with a logged warning.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .extensions import db

log = logging.getLogger(__name__)

_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=False)


def sqlite_module() -> Any:
    """Return the DB-API module to use for SQLite: pysqlite3 if installed, else stdlib."""
    try:
        from pysqlite3 import dbapi2  # type: ignore[import-untyped]

        return dbapi2
    except ImportError:  # pragma: no cover - depends on the installation
        import sqlite3

        log.warning(
            "pysqlite3 is not installed; using the standard library's SQLite %s. "
            "Install pysqlite3 for a SQLite without the WAL-reset bug.",
            sqlite3.sqlite_version,
        )
        return sqlite3


def engine_options(uri: str, busy_timeout_ms: int) -> dict[str, Any]:
    """Return SQLAlchemy ``create_engine`` options for ``uri``."""
    if uri.startswith("sqlite"):
        return {
            "module": sqlite_module(),
            "connect_args": {"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        }
    return {"pool_pre_ping": True}


def configure_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """Install the per-connection pragmas and the explicit BEGIN for SQLite engines."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


def writing() -> bool:
    """Return True inside :func:`atomic`."""
    return _write_intent.get()


@contextmanager
def atomic(session: Session | None = None) -> Iterator[Session]:
    """Run the block as one write transaction and commit it, or roll it all back.

    Opened once at the edge (view, API handler, CLI command); services only flush.
    A read transaction already open on the session (e.g. from loading the current
    user) is ended first so the write transaction starts fresh with the write lock.
    Nested calls join the outer transaction.
    """
    session = session or db.session()
    if _write_intent.get() and session.in_transaction():
        yield session
        return
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("atomic() entered with unflushed changes outside a transaction")
        session.commit()
    token = _write_intent.set(True)
    try:
        with session.begin():
            yield session
    finally:
        _write_intent.reset(token)


class FrozenSelect:
    """A constant SELECT of a read-only check (``ledger verify``): built once, compiled
    once per dialect.

    ``verify()`` runs after every step of the service state machine (tens of thousands
    of times per test run), and most of its cost used to be Python, not SQL: building
    some 30 statements, generating their cache keys and handling ORM results on every
    call. A check's statement has no parameters, so ``build`` (a function) runs on first
    use only; the statement is compiled with its constants inline for the session's
    dialect and then run as plain SQL on the session's connection, inside the session's
    transaction.

    Rows hold the driver's raw values: enum columns come back as their string values
    (equal to the ``StrEnum`` members), sums on PostgreSQL as ``Decimal``, datetimes on
    SQLite as strings. Use it for checks that read ids, counts, amounts and keys only.

    A *violation* query (``frozen_violation``) selects the rows that break an invariant,
    so it is empty on a healthy ledger. Inside :func:`probing_violations` one statement
    asks ``EXISTS`` of every violation query at once (one round trip instead of ~25,
    which is most of ``verify()``'s time on PostgreSQL); a query the probe found empty
    then answers "no row" without running, and any other runs as usual to report its
    first row. The probe is one statement, so it sees one snapshot of the database.
    """

    def __init__(self, build: Callable[[], Any], *, violation: bool = False) -> None:
        self.build = build
        self.violation = violation
        self._compiled: dict[tuple[str, str], Any] = {}
        if violation:
            _VIOLATION_QUERIES.append(self)

    def _statement(self, dialect: Any) -> Any:
        key = (dialect.name, dialect.driver)
        found = self._compiled.get(key)
        if found is None:
            stmt = self.build()
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            # A pyformat driver (psycopg) gets a literal '%' doubled, which only a
            # parametrised execute undoes: run such a statement through SQLAlchemy.
            found = stmt if "%" in sql else sql
            self._compiled[key] = found
        return found

    @staticmethod
    def _connection() -> Any:
        db.session.flush()  # as ``session.execute`` would (autoflush)
        return db.session.connection()

    def _run(self) -> Any:
        conn = self._connection()
        stmt = self._statement(conn.dialect)
        if isinstance(stmt, str):
            return conn.exec_driver_sql(stmt)
        return conn.execute(stmt)

    def first(self) -> Any:
        """Run the statement; return its first row or None."""
        probed = _probed.get()
        if probed is not None and probed.get(id(self)) is False:
            return None
        return self._run().first()

    def all(self) -> list[Any]:
        """Run the statement; return all its rows."""
        return self._run().all()

    def scalar(self) -> Any:
        """Run the statement; return the first column of its first row, or None."""
        row = self.first()
        return None if row is None else row[0]


#: Every violation query, in creation order (the columns of the probe).
_VIOLATION_QUERIES: list[FrozenSelect] = []
#: Inside ``probing_violations``: id(query) -> whether it has a row.
_probed: contextvars.ContextVar[dict[int, bool] | None] = contextvars.ContextVar(
    "frozen_probed", default=None
)
#: The probe statement per (number of violation queries, dialect).
_probes: dict[int, FrozenSelect] = {}


def _probe_for(queries: list[FrozenSelect]) -> FrozenSelect:
    probe = _probes.get(len(queries))
    if probe is None:
        import sqlalchemy as sa

        def build() -> Any:
            return sa.select(*(sa.exists(q.build()).label(f"v{i}") for i, q in enumerate(queries)))

        probe = _probes[len(queries)] = FrozenSelect(build)
    return probe


@contextmanager
def probing_violations() -> Iterator[None]:
    """Answer every violation query from one ``EXISTS`` probe (see :class:`FrozenSelect`)."""
    if _probed.get() is not None:  # nested: the outer probe holds
        yield
        return
    queries = list(_VIOLATION_QUERIES)
    row = _probe_for(queries).first() if queries else ()
    token = _probed.set({id(q): bool(found) for q, found in zip(queries, row, strict=True)})
    try:
        yield
    finally:
        _probed.reset(token)


def frozen(build: Callable[[], Any]) -> FrozenSelect:
    """Decorator: turn a statement-building function into a :class:`FrozenSelect`."""
    return FrozenSelect(build)


def frozen_violation(build: Callable[[], Any]) -> FrozenSelect:
    """Decorator: a :class:`FrozenSelect` of the rows breaking an invariant (usually none)."""
    return FrozenSelect(build, violation=True)
