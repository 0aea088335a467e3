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

The constant queries of ``ledger verify`` (``FrozenSelect`` and its probe) live with
the checks, in ``services/verify/frozen.py``.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .extensions import db

log = logging.getLogger(__name__)

_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=False)


def sqlite_module() -> Any:
    """Return the DB-API module to use for SQLite: pysqlite3 if installed, else stdlib."""
    try:
        from pysqlite3 import dbapi2

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
    # SQL parameters (phones, addresses, password hashes) never reach an exception's
    # text, hence never a log line: ``hide_parameters`` on every engine.
    if uri.startswith("sqlite"):
        return {
            "module": sqlite_module(),
            "connect_args": {"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
            "hide_parameters": True,
        }
    return {"pool_pre_ping": True, "hide_parameters": True}


def unique_violation(exc: BaseException) -> str | None:
    """Return the name of the unique constraint (or ``"unique"`` if the driver does not
    say which) an ``IntegrityError`` broke, or None for any other integrity error."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return None
    if getattr(orig, "sqlstate", None) == "23505":  # psycopg: unique_violation
        diag = getattr(orig, "diag", None)
        return getattr(diag, "constraint_name", None) or "unique"
    message = str(orig)
    if message.startswith("UNIQUE constraint failed"):  # SQLite: "...: users.username"
        return message.partition(":")[2].strip() or "unique"
    return None


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


def remove_session() -> None:
    """End the request's session (the app's first teardown, before Flask-SQLAlchemy's).

    Closing rolls back the connection's transaction; if the database dropped the
    connection meanwhile (PostgreSQL restarted, backends terminated) that rollback fails.
    The response is already made, so the error must not turn it into a 500: the
    connection is discarded (the pool pings the others before lending them) and logged.
    """
    try:
        db.session.remove()
    except DBAPIError as exc:
        log.warning("discarding a lost database connection: %s", type(exc.orig).__name__)
        # Invalidate (close) the session's connections rather than leave the dead one
        # for the garbage collector; then the scoped session is removed.
        with suppress(DBAPIError):
            db.session().invalidate()
        with suppress(DBAPIError):  # the failed close left nothing to roll back
            db.session.remove()


def writing() -> bool:
    """Return True inside :func:`atomic`."""
    return _write_intent.get()


@contextmanager
def atomic(session: Session | None = None) -> Iterator[Session]:
    """Run the block as one write transaction and commit it, or roll it all back.

    Opened once at the edge (view, API handler, CLI command); services only flush.
    A read transaction already open on the session (e.g. from loading the current
    user) is ended first so the write transaction starts fresh with the write lock.
    Nested calls join the outer transaction. An error whose ``keep_writes`` is true
    (``services.errors.DomainError(keep_writes=True)``, e.g. a counted wrong pickup
    code) commits what was written and is raised after the commit.
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
    kept: BaseException | None = None
    try:
        with session.begin():
            try:
                yield session
            except Exception as exc:
                if not getattr(exc, "keep_writes", False):
                    raise
                kept = exc  # a refusal that keeps its writes: commit, then raise it
    finally:
        _write_intent.reset(token)
    if kept is not None:
        raise kept
