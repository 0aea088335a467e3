"""Sign-ups under real concurrency (threads against one file database or PostgreSQL):
the places never overfill, one member never holds two sign-ups, the counter matches."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import Role, SessionSignup, SignupStatus

from ..factories import bearer, make_user
from .conftest import make_session, session_row, sign_up


def _race(client, calls: list[tuple[str, str, dict]]) -> list:
    """Send each ``(method, path, headers)`` from its own thread, released together."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def send(i: int) -> None:
        method, path, headers = calls[i]
        barrier.wait()
        try:
            results[i] = client.open(path, method=method, headers=headers).status_code
        except BaseException as exc:  # noqa: BLE001  (reported below)
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(r, int) for r in results), results
    return results


def _state(session_id: int) -> tuple[int, int, int]:
    db.session.rollback()
    rows = db.session.scalars(
        sa.select(SessionSignup).where(SessionSignup.session_id == session_id)
    ).all()
    up = sum(r.status == SignupStatus.SIGNED_UP for r in rows)
    wait = sum(r.status == SignupStatus.WAITLISTED for r in rows)
    return up, wait, session_row(session_id).signed_up_count


def test_many_signups_at_once_fill_exactly_the_slots(client, world, project):
    members = [make_user(f"racer{i}", (Role.MEMBER, world.community_a)) for i in range(8)]
    session = make_session(project, slots=3)
    path = f"/api/v1/sessions/{session.id}/signups"
    calls = [("POST", path, bearer(m)) for m in members]
    db.session.commit()
    assert sorted(_race(client, calls)) == [201] * 8
    assert _state(session.id) == (3, 5, 3)


def test_cancellations_and_signups_at_once_never_overfill(client, world, project):
    """Two cancellations and three sign-ups at once, on a full session with a queue."""
    holders = [make_user(f"holder{i}", (Role.MEMBER, world.community_a)) for i in range(3)]
    queued = [make_user(f"queued{i}", (Role.MEMBER, world.community_a)) for i in range(2)]
    newcomers = [make_user(f"new{i}", (Role.MEMBER, world.community_a)) for i in range(3)]
    session = make_session(project, slots=3)
    for m in holders + queued:
        sign_up(m, session)
    path = f"/api/v1/sessions/{session.id}/signups"
    calls = [("DELETE", path, bearer(m)) for m in holders[:2]]
    calls += [("POST", path, bearer(m)) for m in newcomers]
    db.session.commit()
    results = _race(client, calls)
    assert results[:2] == [200, 200] and results[2:] == [201] * 3
    up, wait, counter = _state(session.id)
    assert (up, counter) == (3, 3)
    assert wait == 3  # the three newcomers queue behind the two promoted
    db.session.rollback()
    promoted = db.session.scalars(
        sa.select(SessionSignup.user_id).where(
            SessionSignup.session_id == session.id,
            SessionSignup.status == SignupStatus.SIGNED_UP,
        )
    ).all()
    # in every order, each freed place goes to the head of the queue, never a newcomer
    assert sorted(promoted) == sorted([holders[2].id, queued[0].id, queued[1].id])


def test_one_member_racing_themself_holds_one_signup(client, world, project):
    member = make_user("doubler", (Role.MEMBER, world.community_a))
    session = make_session(project, slots=3)
    headers = bearer(member)
    path = f"/api/v1/sessions/{session.id}/signups"
    db.session.commit()
    results = _race(client, [("POST", path, headers)] * 6)
    assert sorted(results) == [201] + [409] * 5
    assert _state(session.id) == (1, 0, 1)
