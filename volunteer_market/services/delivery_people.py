"""Who a delivery's people are -- its recorder, participants and beneficiaries -- read
once per transaction (issue 21: a rating that settles asked the same questions of the
same delivery nine times, one statement each: ``is_participant`` four times,
``is_beneficiary`` twice, the participant and beneficiary lists, the parties of the
self-dealing guard).

:func:`people_of` answers from one statement and keeps the answer for the transaction
(:mod:`.transaction_memo`: forgotten when a flush writes a participant or beneficiary row
or changes a delivery's recorder, on any rollback, at the end of the outermost
transaction; unflushed such rows are flushed first, as autoflush did). The rows of a
delivery's people change only while it is recorded or edited, under its lock.

Nothing writes these tables with Core statements that change who is in them (the one
Core ``UPDATE`` of beneficiaries sets ``code_used_at``); a new one must call
:func:`forget`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Delivery, DeliveryBeneficiary, DeliveryParticipant
from .transaction_memo import TransactionMemo


@dataclass(frozen=True)
class DeliveryPeople:
    """The people of one delivery; the tuples are in row (id) order."""

    recorder_id: int | None
    participant_ids: tuple[int, ...]
    beneficiary_ids: tuple[int, ...]

    @property
    def parties(self) -> set[int]:
        """Its participants and its recorder (whose points or record acting on it moves)."""
        out = set(self.participant_ids)
        if self.recorder_id is not None:
            out.add(self.recorder_id)
        return out


def _statement() -> sa.Select[Any]:
    def kind(n: int) -> Any:
        return sa.literal_column(str(n)).label("kind")

    recorder = sa.select(
        kind(0), Delivery.recorded_by_id.label("user_id"), Delivery.id.label("row_id")
    ).where(Delivery.id == sa.bindparam("d"))
    participants = sa.select(
        kind(1),
        DeliveryParticipant.user_id.label("user_id"),
        DeliveryParticipant.id.label("row_id"),
    ).where(DeliveryParticipant.delivery_id == sa.bindparam("d"))
    beneficiaries = sa.select(
        kind(2),
        DeliveryBeneficiary.user_id.label("user_id"),
        DeliveryBeneficiary.id.label("row_id"),
    ).where(DeliveryBeneficiary.delivery_id == sa.bindparam("d"))
    people = sa.union_all(recorder, participants, beneficiaries).subquery("people")
    return sa.select(people.c.kind, people.c.user_id).order_by(people.c.kind, people.c.row_id)


#: Built once; each call binds the delivery id only.
_PEOPLE = _statement()


def _changes_people(obj: Any) -> bool:
    """A changed participant or beneficiary row counts; a delivery only when its
    recorder changed (its status changing does not)."""
    if isinstance(obj, Delivery):
        return sa.inspect(obj).attrs.recorded_by_id.history.has_changes()
    return True


MEMO: TransactionMemo[DeliveryPeople] = TransactionMemo(
    "delivery_people", (Delivery, DeliveryParticipant, DeliveryBeneficiary), _changes_people
)


def people_of(delivery_id: int) -> DeliveryPeople:
    """Return the recorder, participants and beneficiaries of the delivery (one statement
    per delivery and transaction; see the module docstring for when it is read again)."""
    return MEMO.get(delivery_id, lambda: _read(delivery_id))


def _read(delivery_id: int) -> DeliveryPeople:
    rows = db.session.execute(_PEOPLE, {"d": delivery_id}).all()
    return DeliveryPeople(
        recorder_id=next((r.user_id for r in rows if r.kind == 0), None),
        participant_ids=tuple(r.user_id for r in rows if r.kind == 1),
        beneficiary_ids=tuple(r.user_id for r in rows if r.kind == 2),
    )


def forget(session: Session | None = None) -> None:
    """Forget every kept answer of ``session`` (default: the request's)."""
    MEMO.forget(session)
