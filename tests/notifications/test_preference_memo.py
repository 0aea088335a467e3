"""The e-mail preferences of notified users are read once per transaction
(``outbox._WANTS_EMAIL``, a :class:`~volunteer_market.services.transaction_memo.
TransactionMemo`), and a preference changed in the same transaction, or by another
transaction before this one began, still decides (issue 21)."""

from __future__ import annotations

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Channel, NotificationPreference, OutboxMessage
from volunteer_market.services import audit, outbox

from ..statements import Statements
from .outbox_helpers import choose_email


def _email_rows() -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.channel == Channel.EMAIL)
    )


def test_many_notifications_ask_once_per_transaction(world):
    choose_email(world.member_a)
    users = [world.member_a, world.member_a2, world.member_b]
    with Statements() as sql, atomic():
        outbox.prefetch_preferences([u.id for u in users])
        for _ in range(3):
            for u in users:
                audit.notify(u.id, "points.earned", params={"points": 1})
    assert sql.count("SELECT notification_preferences") == 1, "\n".join(sql.lines)
    assert _email_rows() == 3  # member_a's three notifications, nobody else's


def test_a_preference_turned_on_in_the_transaction_counts(world):
    with atomic():
        audit.notify(world.member_a.id, "points.earned", params={"points": 1})
        db.session.add(
            NotificationPreference(
                user_id=world.member_a.id, email="a@example.org", email_enabled=True
            )
        )
        audit.notify(world.member_a.id, "points.earned", params={"points": 2})
    assert _email_rows() == 1  # the second one only


def test_a_preference_turned_off_in_the_transaction_counts(world):
    choose_email(world.member_a)
    with atomic():
        audit.notify(world.member_a.id, "points.earned", params={"points": 1})
        db.session.get(NotificationPreference, world.member_a.id).email_enabled = False
        audit.notify(world.member_a.id, "points.earned", params={"points": 2})
    assert _email_rows() == 1  # the first one only


def test_another_transaction_s_change_counts_in_the_next_transaction(world):
    with atomic():
        audit.notify(world.member_a.id, "points.earned", params={"points": 1})
    choose_email(world.member_a)  # its own transaction, committed
    with atomic():
        audit.notify(world.member_a.id, "points.earned", params={"points": 2})
    assert _email_rows() == 1


def test_a_rolled_back_savepoint_forgets(world):
    with atomic():
        savepoint = db.session.begin_nested()
        db.session.add(
            NotificationPreference(
                user_id=world.member_a.id, email="a@example.org", email_enabled=True
            )
        )
        audit.notify(world.member_a.id, "points.earned", params={"points": 1})
        savepoint.rollback()  # the preference and that notification are gone
        audit.notify(world.member_a.id, "points.earned", params={"points": 2})
    assert _email_rows() == 0
