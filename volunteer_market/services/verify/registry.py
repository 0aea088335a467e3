"""The registry of ledger checks, :class:`Violation`, and the runners ``verify``/``verify_all``.

A check is ``fn() -> Violation | None``: it reports the first broken invariant it finds
(lowest id), or None. The package ``__init__`` registers every check, in the order
they run (:func:`check_names`); :func:`register_check` adds one more at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from ...extensions import db
from ...models import LedgerAccount, LedgerEntry, LedgerTransaction
from .frozen import probing_violations


@dataclass(frozen=True)
class Violation:
    """The first broken invariant found by one check."""

    check: str
    detail: str
    transaction_id: int | None = None
    account_id: int | None = None

    def __str__(self) -> str:
        where = []
        if self.transaction_id is not None:
            where.append(f"transaction {self.transaction_id}")
        if self.account_id is not None:
            where.append(f"account {self.account_id}")
        prefix = f"[{self.check}]" + (f" {', '.join(where)}:" if where else "")
        return f"{prefix} {self.detail}"


Check = Callable[[], Violation | None]
_CHECKS: list[tuple[str, Check]] = []


def register_check(name: str) -> Callable[[Check], Check]:
    """Register ``fn() -> Violation | None`` as a named ledger invariant (run last)."""

    def add(fn: Check) -> Check:
        if any(existing == name for existing, _fn in _CHECKS):
            raise RuntimeError(f"duplicate ledger check {name}")
        _CHECKS.append((name, fn))
        return fn

    return add


def check_names() -> list[str]:
    """Return the names of every registered check, in the order they run."""
    return [name for name, _fn in _CHECKS]


def selected(checks: Iterable[str] | None) -> list[tuple[str, Check]]:
    """Return ``(name, check)`` of every check (``None``) or of the named ones, in order.

    :raises LookupError: an unknown name.
    """
    if checks is None:
        return list(_CHECKS)
    wanted = set(checks)
    unknown = wanted - {name for name, _fn in _CHECKS}
    if unknown:
        raise LookupError(f"unknown ledger checks: {sorted(unknown)}")
    return [(name, fn) for name, fn in _CHECKS if name in wanted]


def verify(checks: Iterable[str] | None = None) -> Violation | None:
    """Run every check (or only ``checks``) in order; return the first violation, or
    None if all hold."""
    chosen = selected(checks)
    with _probing(checks):
        for _name, fn in chosen:
            found = fn()
            if found is not None:
                return found
    return None


def verify_all(checks: Iterable[str] | None = None) -> list[Violation]:
    """Run every check (or only ``checks``); return the first violation of each that fails."""
    chosen = selected(checks)
    with _probing(checks):
        return [v for _name, fn in chosen if (v := fn()) is not None]


def _probing(checks: Iterable[str] | None) -> contextlib.AbstractContextManager[None]:
    """The one ``EXISTS`` probe covers the violation queries of *every* check, so it
    pays only when all checks run; a chosen few (``ledger verify --check``) run their
    own queries (at 10M entries the full probe takes most of an hour)."""
    return probing_violations() if checks is None else contextlib.nullcontext()


def stats() -> dict[str, int]:
    """Return counts: transactions, entries, accounts, and the sum of all entries."""
    s = db.session
    return {
        "transactions": s.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction)) or 0,
        "entries": s.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) or 0,
        "accounts": s.scalar(sa.select(sa.func.count()).select_from(LedgerAccount)) or 0,
        "entries_sum": int(
            s.execute(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))).scalar_one()
        ),
    }
