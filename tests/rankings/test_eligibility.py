"""The stored eligibility flag (``ranking_members.eligible``): excluded members' rows
are flagged and left out of the score buckets when the member is suspended or their
member role ends, and put back when it comes back; the posting that creates a row
sets the flag; ``ledger verify`` catches a wrong flag; ``rankings rebuild`` and
migration 0004 compute the same flags; a suspension racing with postings leaves the
rollups exact."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Role, User
from volunteer_market.services import ledger as ledger_service
from volunteer_market.services import rankings
from volunteer_market.services import users as user_service
from volunteer_market.services import verify as verifier
from volunteer_market.services.ledger import posting as ledger_posting
from volunteer_market.services.verify.rankings import first_mismatch

from .conftest import (
    bare_deliveries,
    board,
    earn,
    raw,
    rebuild,
    revoke_member_grant,
    rollups,
    set_active,
    standings,
)


def flags(user) -> dict[int, set[bool]]:
    """``{area_id: {eligible flags of the user's rows there}}``."""
    out: dict[int, set[bool]] = {}
    for area_id, eligible in raw(
        "SELECT area_id, eligible FROM ranking_members WHERE user_id = :u", u=user.id
    ):
        out.setdefault(area_id, set()).add(bool(eligible))
    return out


def bucket(area, points: int, period: str = "all") -> int:
    rows = raw(
        "SELECT members FROM ranking_score_counts"
        " WHERE area_id = :a AND period_key = :p AND points = :n",
        a=area.id,
        p=period,
        n=points,
    )
    return int(rows[0][0]) if rows else 0


def test_suspension_flags_every_row_and_reinstatement_restores_them(world):
    w = world
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    areas = {w.community_a.id, w.street.id, w.district.id}
    assert flags(w.member_a) == {a: {True} for a in areas}
    assert bucket(w.district, 30) == 1

    set_active(w.member_a, False)
    assert flags(w.member_a) == {a: {False} for a in areas}
    assert bucket(w.district, 30) == 0 and bucket(w.district, 30, "2026") == 0
    assert bucket(w.district, 20) == 1  # the others' buckets are untouched
    assert standings(w.district) == [(1, "member_a2", 20)]
    assert board(w.district, viewer=w.member_a)["me"] is None
    assert board(w.district)["total"] == 1
    assert verifier.verify() is None

    set_active(w.member_a, True)
    assert flags(w.member_a) == {a: {True} for a in areas}
    assert bucket(w.district, 30) == 1
    assert standings(w.district) == [(1, "member_a", 30), (2, "member_a2", 20)]
    assert board(w.district, viewer=w.member_a)["me"]["rank"] == 1
    assert verifier.verify() is None


def test_an_ended_grant_flags_only_the_areas_it_covered(world):
    w = world
    earn(w.member_a, w.community_a, 30)
    revoke_member_grant(w.member_a, w.community_a)
    assert flags(w.member_a) == {
        w.community_a.id: {False},
        w.street.id: {False},
        w.district.id: {False},
    }
    assert verifier.verify() is None
    # Moved to community C (another street of the district): ranked in the district
    # again, still not in community A or its street.
    with atomic():
        user_service.grant_role(None, w.member_a, Role.MEMBER, w.community_c)
    assert flags(w.member_a) == {
        w.community_a.id: {False},
        w.street.id: {False},
        w.district.id: {True},
    }
    assert bucket(w.district, 30) == 1 and bucket(w.street, 30) == 0
    assert verifier.verify() is None


def test_an_earn_of_an_excluded_member_creates_flagged_rows_outside_the_buckets(world):
    w = world
    earn(w.member_a2, w.community_a, 20)
    set_active(w.member_a, False)  # no rows yet: nothing to flag
    assert flags(w.member_a) == {}
    earn(w.member_a, w.community_a, 30)  # e.g. a settlement of an earlier delivery
    assert set().union(*flags(w.member_a).values()) == {False}
    assert bucket(w.community_a, 30) == 0
    assert standings(w.community_a) == [(1, "member_a2", 20)]
    assert verifier.verify() is None
    set_active(w.member_a, True)
    assert standings(w.community_a) == [(1, "member_a", 30), (2, "member_a2", 20)]
    assert verifier.verify() is None


def test_verify_reports_a_wrong_flag_and_rebuild_repairs_it(world):
    w = world
    earn(w.member_a, w.community_a, 30)
    raw(
        "UPDATE ranking_members SET eligible = false WHERE user_id = :u AND area_id = :a"
        " AND period_key = 'all'",
        u=w.member_a.id,
        a=w.community_a.id,
    )
    found = verifier.verify()
    assert found is not None and found.check == "ranking_rollups"
    assert f"area {w.community_a.id} period all user {w.member_a.id}" in found.detail
    assert "eligible=True" in found.detail and "eligible=False" in found.detail
    rebuild()
    assert flags(w.member_a)[w.community_a.id] == {True}
    assert verifier.verify() is None


def test_verify_reports_a_bucket_that_counts_an_excluded_member(world):
    w = world
    earn(w.member_a, w.community_a, 30)
    set_active(w.member_a, False)
    assert verifier.verify() is None
    raw(
        "INSERT INTO ranking_score_counts (area_id, period_key, points, members)"
        " VALUES (:a, 'all', 30, 1)",
        a=w.community_a.id,
    )
    found = verifier.verify()
    assert found is not None and found.check == "ranking_rollups"
    assert "score bucket" in found.detail


def test_rebuild_computes_the_same_flags_and_buckets(world):
    w = world
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    earn(w.member_c, w.community_c, 10)
    set_active(w.member_a2, False)
    revoke_member_grant(w.member_c, w.community_c)
    before = rollups()
    assert any(row for row in before["ranking_members"] if not row[-1])
    rebuild()
    assert rollups() == before


def test_suspensions_racing_with_earns_keep_flags_and_buckets_exact(app, world, monkeypatch):
    """Four threads post earns for member_a and member_a2 while a fifth suspends and
    reinstates member_a over and over (ending suspended), each in its own transaction
    on one database. Every posting lands in a new month, so most postings create rows
    (and read member_a's state to flag them) while the suspensions flip the others."""
    w = world
    posters, per_thread, toggles = 4, 6, 9
    deliveries = bare_deliveries(w.community_a, w.member_a, posters * per_thread)
    months = itertools.count()
    lock = threading.Lock()

    def next_month() -> datetime:
        with lock:
            n = next(months)
        return datetime(2020, 1, 15, 4, tzinfo=UTC) + timedelta(days=31 * n)

    monkeypatch.setattr(ledger_posting, "utcnow", next_month)
    barrier = threading.Barrier(posters + 1)
    errors: list[BaseException] = []

    def post(index: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                for j in range(per_thread):
                    member = w.member_a if j % 2 == 0 else w.member_a2
                    with atomic():
                        ledger_service.earn(
                            None,
                            member_id=member.id,
                            community_id=w.community_a.id,
                            delivery_id=deliveries[index * per_thread + j],
                            points=5 + index,
                            minutes=30,
                            policy_id=None,
                        )
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def toggle() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                for k in range(toggles):
                    with atomic():
                        db.session.get(User, w.member_a.id).is_active = k % 2 == 1
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(posters)]
    threads.append(threading.Thread(target=toggle))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a worker hung"
    assert errors == []
    # The last toggle suspended member_a: no row of theirs may still count.
    assert set().union(*flags(w.member_a).values()) == {False}
    assert verifier.verify() is None
    assert [i["display_name"] for i in board(w.community_a)["items"]] == ["member_a2"]
    set_active(w.member_a, True)
    assert verifier.verify() is None
    expected_a = sum(5 + i for i in range(posters) for j in range(per_thread) if j % 2 == 0)
    assert board(w.community_a, viewer=w.member_a)["me"]["points"] == expected_a
    assert first_mismatch() is None


def _statements_of_a_ranking(area, viewer) -> list[str]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    db.session.rollback()
    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        rankings.ranking(area, "all", viewer=viewer)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def test_a_read_needs_no_exclusion_look_up(world):
    """Reads cost the same with or without excluded members: no statement reads the
    role grants, and the count does not change when members are suspended."""
    w = world
    for member, points in ((w.member_a, 30), (w.member_a2, 20), (w.member_a3, 10)):
        earn(member, w.community_a, points)
    before = _statements_of_a_ranking(w.district, w.member_a3)
    set_active(w.member_a, False)
    revoke_member_grant(w.member_a2, w.community_a)
    after = _statements_of_a_ranking(w.district, w.member_a3)
    assert len(after) == len(before) <= 4, after
    assert not [s for s in before + after if "role_grants" in s]
    assert standings(w.district, viewer=w.member_a3) == [(1, "member_a3", 10)]
