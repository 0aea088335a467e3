"""The reminder before a session (``flask notifications remind``): every member holding
a place is reminded once, a day before; nobody else; concurrent runs never twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Notification, OutboxMessage, Role
from volunteer_market.services import sessions as session_service
from volunteer_market.web.notifications import notification_text

from ..factories import make_user
from ..notifications.outbox_helpers import choose_email
from .conftest import make_session, now, sign_up


def _reminded() -> list[tuple[int, int]]:
    db.session.rollback()
    return sorted(
        (row.user_id, row.object_id)
        for row in db.session.execute(
            sa.select(Notification.user_id, Notification.object_id).where(
                Notification.kind == "session.reminder"
            )
        )
    )


def _members(world, n: int):
    return [
        make_user(f"rm{i}", (Role.MEMBER, world.community_a), display_name=f"提醒{i}")
        for i in range(n)
    ]


def test_places_are_reminded_once_a_day_before(app, world, project):
    at = now()
    soon = make_session(project, starts_in=20, slots=2, at=at)  # within the day
    later = make_session(project, starts_in=60, slots=2, at=at)  # not yet
    a, b, waiting = _members(world, 3)
    for m in (a, b, waiting):
        sign_up(m, soon, at=at)
    sign_up(a, later, at=at)
    with atomic():
        assert session_service.remind_upcoming(at) == 2
    assert _reminded() == sorted([(a.id, soon.id), (b.id, soon.id)])  # not the waitlisted
    with atomic():  # a second run reminds nobody twice
        assert session_service.remind_upcoming(at + timedelta(minutes=5)) == 0
    # a day later the other session is due; the first has started and is left alone
    with atomic():
        assert session_service.remind_upcoming(at + timedelta(hours=40)) == 1
    assert (a.id, later.id) in _reminded() and len(_reminded()) == 3


def test_promoted_after_the_reminder_is_reminded_by_the_next_run(app, world, project):
    at = now()
    s = make_session(project, starts_in=10, slots=1, at=at)
    first, second = _members(world, 2)
    sign_up(first, s, at=at)
    sign_up(second, s, at=at)  # waitlisted
    with atomic():
        assert session_service.remind_upcoming(at) == 1
    with atomic():
        session_service.cancel_signup(first, s.id, now=at + timedelta(minutes=1))
    with atomic():
        assert session_service.remind_upcoming(at + timedelta(minutes=2)) == 1
    assert _reminded() == sorted([(first.id, s.id), (second.id, s.id)])


def test_cancelled_sessions_are_not_reminded(app, world, project):
    at = now()
    s = make_session(project, starts_in=5, at=at)
    (m,) = _members(world, 1)
    sign_up(m, s, at=at)
    with atomic():
        session_service.cancel_session(world.member_a, s.id, now=at)
    with atomic():
        assert session_service.remind_upcoming(at) == 0
    assert _reminded() == []


def test_the_reminder_reads_in_the_language_and_reaches_the_outbox(app, world, project):
    at = now()
    s = make_session(project, starts_in=3, at=at)
    (m,) = _members(world, 1)
    choose_email(m)
    sign_up(m, s, at=at)
    with atomic():
        session_service.remind_upcoming(at)
    db.session.rollback()
    note = db.session.scalars(
        sa.select(Notification).where(Notification.kind == "session.reminder")
    ).one()
    with app.test_request_context("/?lang=zh_CN"):
        text = notification_text(note)
    assert project.title in text and "社区活动室" in text and "提醒" in text
    assert db.session.scalars(
        sa.select(OutboxMessage.kind).where(OutboxMessage.notification_id == note.id)
    ).all() == ["session.reminder"]


def test_concurrent_runs_remind_each_place_once(app, world, project):
    at = now()
    s = make_session(project, starts_in=12, slots=6, at=at)
    members = _members(world, 6)
    for m in members:
        sign_up(m, s, at=at)
    db.session.commit()
    runs = 4
    barrier = threading.Barrier(runs)
    counts: list = [None] * runs

    def run(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                with atomic():
                    counts[i] = session_service.remind_upcoming(at)
            except BaseException as exc:  # noqa: BLE001  (reported below)
                counts[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(c, int) for c in counts), counts
    assert sum(counts) == 6  # every place once, whichever run got it
    assert _reminded() == sorted((m.id, s.id) for m in members)


def test_the_cli_runs_the_session_reminder(app, world, project, runner):
    at = now()
    s = make_session(project, starts_in=6, at=at)
    (m,) = _members(world, 1)
    sign_up(m, s, at=at)
    db.session.commit()
    out = runner.invoke(args=["notifications", "remind", "--now", at.isoformat()])
    assert out.exit_code == 0 and "sessions 1" in out.output, out.output
    assert _reminded() == [(m.id, s.id)]
