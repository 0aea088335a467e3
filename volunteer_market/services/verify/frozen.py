"""Frozen queries: the constant SELECTs of ``ledger verify``, built and compiled once.

Moved here from ``database.py`` (which keeps engine set-up and ``atomic()``): only the
checks of this package use them. See :class:`FrozenSelect`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from ...extensions import db


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
