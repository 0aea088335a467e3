"""Answers read once per transaction and kept in the session until anything could make
them stale (issue 21: the rating path asked the same questions of the same rows again and
again, a statement each). Users: ``delivery_people`` (a delivery's recorder, participants
and beneficiaries) and ``outbox`` (the notification preferences of the users notified).

A :class:`TransactionMemo` watches some mapped classes. Its kept answers are forgotten

* when a flush writes a watched row (new, changed or deleted; ``touches`` may narrow
  what counts as a change);
* on any rollback, a savepoint's too;
* at the end of the outermost transaction (commit, rollback, close), so another
  transaction's changes are never hidden behind an earlier answer.

Before answering, unflushed watched rows are flushed -- what autoflush did for the
statement the memo replaces; inside ``no_autoflush`` the answer is read from the
database and not kept. A Core statement that writes a watched table must call
:meth:`TransactionMemo.forget`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from itertools import chain
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db

V = TypeVar("V")

#: ``touches(obj) -> bool``: whether a dirty (changed) watched object changes answers.
Touches = Callable[[Any], bool]


class TransactionMemo(Generic[V]):
    """Answers keyed by ``Hashable``, kept in ``session.info[name]`` for one transaction."""

    def __init__(
        self, name: str, watched: tuple[type, ...], touches: Touches | None = None
    ) -> None:
        self.name = name
        self.watched = watched
        self.touches = touches or (lambda _obj: True)
        event.listen(Session, "after_flush", self._forget_on_flush)
        event.listen(Session, "after_rollback", self.forget)
        event.listen(Session, "after_transaction_end", self._forget_at_the_end)

    def pending(self, session: Session) -> bool:
        """Whether the session holds unflushed changes to watched rows."""
        if any(isinstance(o, self.watched) for o in chain(session.new, session.deleted)):
            return True
        return any(isinstance(o, self.watched) and self.touches(o) for o in session.dirty)

    def _session(self) -> tuple[Session, bool]:
        """The request's session, flushed if it must be; and whether answers may be kept."""
        session = db.session()
        if self.pending(session):
            if not session.autoflush:  # inside ``no_autoflush``: read, keep nothing
                return session, False
            session.flush()
        return session, True

    def get(self, key: Hashable, read: Callable[[], V]) -> V:
        """Return the kept answer for ``key``, else ``read()`` (and keep it)."""
        session, keep = self._session()
        kept: dict[Hashable, V] = session.info.setdefault(self.name, {}) if keep else {}
        if key in kept:
            return kept[key]
        kept[key] = read()  # kept only when ``kept`` is the session's
        return kept[key]

    def get_many(
        self, keys: Iterable[Hashable], read: Callable[[list[Any]], dict[Any, V]], missing: V
    ) -> dict[Any, V]:
        """Return the answers for ``keys``, reading those not kept in one ``read(keys)``
        (a key it does not return gets ``missing``)."""
        session, keep = self._session()
        kept: dict[Hashable, V] = session.info.setdefault(self.name, {}) if keep else {}
        wanted = list(dict.fromkeys(keys))
        unknown = [k for k in wanted if k not in kept]
        if unknown:
            found = read(unknown)
            for k in unknown:
                kept[k] = found.get(k, missing)  # kept only when ``kept`` is the session's
        return {k: kept[k] for k in wanted}

    def forget(self, session: Session | None = None) -> None:
        """Forget every kept answer of ``session`` (default: the request's)."""
        (session or db.session()).info.pop(self.name, None)

    def _forget_on_flush(self, session: Session, _context: Any) -> None:
        if self.name in session.info and self.pending(session):
            self.forget(session)

    def _forget_at_the_end(self, session: Session, transaction: Any) -> None:
        if transaction.parent is None:
            self.forget(session)
