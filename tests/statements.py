"""``with Statements() as sql: ...`` records the SQL the engine runs inside the block (each
statement on one line), for the tests of how many statements a path takes and in which
order (tests/ledger/test_lean_posting.py, tests/ratings/test_lean_settlement.py)."""

from __future__ import annotations

import sqlalchemy as sa

from volunteer_market.extensions import db


class Statements:
    """The statements the engine runs while the block is open, whitespace collapsed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __enter__(self) -> Statements:
        sa.event.listen(db.engine, "before_cursor_execute", self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(db.engine, "before_cursor_execute", self._note)

    def _note(self, conn, cursor, statement, params, context, executemany):  # noqa: ANN001
        self.lines.append(" ".join(statement.split()))

    def starting(self, prefix: str) -> list[int]:
        """Indexes of the statements that start with ``prefix``."""
        return [i for i, s in enumerate(self.lines) if s.startswith(prefix)]

    def count(self, prefix: str) -> int:
        """How many statements start with ``prefix``."""
        return len(self.starting(prefix))
