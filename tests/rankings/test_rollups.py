"""Rollups stay exact: rebuild equals the incrementally maintained rows after random
earns and reversals; concurrent postings keep them exact; ``ledger verify`` finds
a tampered rollup and ``rankings rebuild`` repairs it."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Role
from volunteer_market.services import ledger as ledger_service
from volunteer_market.services import rankings
from volunteer_market.services import verify as verifier
from volunteer_market.services.verify.rankings import first_mismatch

from ..factories import make_delivery, make_project, make_user
from .conftest import bare_deliveries, earn, local, raw, rebuild, reverse, rollups


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rebuild_equals_incremental_rollups(world, clock, seed):
    w = world
    rng = random.Random(seed)
    clock.set(None)
    grid_member = make_user("member_g", (Role.MEMBER, w.areas["grid_a1"]))
    project = make_project(w.member_a, w.community_a, status="approved", team=[w.member_a2])
    delivery = make_delivery(project, w.member_a, participants=[(w.member_a, 2), (w.member_a2, 1)])
    real = [(w.member_a, delivery.delivery.id), (w.member_a2, delivery.delivery.id)]
    people = [
        (w.member_a, w.community_a),
        (w.member_a2, w.community_a),
        (grid_member, w.community_a),
        (w.member_b, w.community_b),
        (w.member_c, w.community_c),
    ]
    start = local("2025-12-30 12:00")
    posted = []
    for _step in range(40):
        # Times jump around two year ends and out of order (clock steps back too).
        clock.set(start + timedelta(hours=rng.randrange(0, 24 * 400)))
        if posted and rng.random() < 0.3:
            tx = posted.pop(rng.randrange(len(posted)))
            reverse(tx)
            continue
        if real and rng.random() < 0.2:
            member, delivery_id = real.pop()
            community = w.community_a
        else:
            member, community = rng.choice(people)
            delivery_id = None
        tx = earn(
            member,
            community,
            rng.randrange(1, 30),
            minutes=rng.randrange(0, 480),
            delivery_id=delivery_id,
        )
        posted.append(tx)
    db.session.rollback()
    assert first_mismatch() is None
    before = rollups()
    assert before["ranking_members"]
    counts = rebuild()
    after = rollups()
    assert after == before
    assert counts["members"] == len(after["ranking_members"])
    assert verifier.verify() is None


def test_verify_reports_a_tampered_rollup_and_rebuild_repairs_it(world, runner):
    w = world
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    assert verifier.verify() is None
    raw(
        "UPDATE ranking_members SET points = points + 5 WHERE user_id = :u AND area_id = :a"
        " AND period_key = 'all'",
        u=w.member_a2.id,
        a=w.community_a.id,
    )
    found = verifier.verify()
    assert found is not None and found.check == "ranking_rollups"
    assert f"area {w.community_a.id} period all user {w.member_a2.id}" in found.detail
    assert "expected points=20" in found.detail and "found points=25" in found.detail
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1 and "ranking_rollups" in result.output
    result = runner.invoke(args=["rankings", "rebuild"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Rebuilt ranking rollups:")
    db.session.rollback()
    assert verifier.verify() is None


def test_verify_reports_a_wrong_score_bucket(world):
    earn(world.member_a, world.community_a, 30)
    raw("UPDATE ranking_score_counts SET members = members + 1 WHERE points = 30")
    found = verifier.verify()
    assert found is not None and found.check == "ranking_rollups"
    assert "score bucket" in found.detail


def test_verify_reports_a_stray_row(world):
    earn(world.member_a, world.community_a, 30)
    raw(
        "INSERT INTO ranking_members (area_id, period_key, user_id, points, minutes, reached_at)"
        " VALUES (:a, 'all', :u, 5, 0, :t)",
        a=world.community_b.id,
        u=world.member_b.id,
        t=datetime(2026, 1, 1),  # naive UTC, as stored on SQLite
    )
    found = verifier.verify()
    assert found is not None and found.check == "ranking_rollups"
    assert f"user {world.member_b.id}" in found.detail


def test_a_reversal_without_rollups_is_refused(world):
    tx = earn(world.member_a, world.community_a, 30)
    raw("DELETE FROM ranking_members")
    with pytest.raises(rankings.RollupsOutOfSync):
        reverse(tx)
    db.session.rollback()
    rebuild()
    reverse(tx)
    assert verifier.verify() is None


def test_rebuild_outside_atomic_is_refused(app):
    with pytest.raises(RuntimeError):
        rankings.rebuild()


def test_concurrent_earns_keep_rollups_exact(app, world):
    w = world
    members = [
        (w.member_a.id, w.community_a.id),
        (w.member_a2.id, w.community_a.id),
        (w.member_b.id, w.community_b.id),
    ]
    threads, per_thread = 6, 5
    deliveries = {
        c.id: bare_deliveries(c, w.member_a, threads * per_thread)
        for c in (w.community_a, w.community_b)
    }
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                for j in range(per_thread):
                    member_id, community_id = members[(index + j) % len(members)]
                    with atomic():
                        tx = ledger_service.earn(
                            None,
                            member_id=member_id,
                            community_id=community_id,
                            delivery_id=deliveries[community_id][index * per_thread + j],
                            points=10 + index,
                            minutes=30,
                            policy_id=None,
                        )
                    if j == per_thread - 1 and index % 2 == 0:
                        with atomic():
                            ledger_service.reverse(None, tx, "并发测试冲正")
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
        assert not t.is_alive(), "a worker hung"
    assert errors == []
    db.session.rollback()
    expected: dict[int, int] = {}
    for index in range(threads):
        for j in range(per_thread):
            member_id, _c = members[(index + j) % len(members)]
            if j == per_thread - 1 and index % 2 == 0:
                continue
            expected[member_id] = expected.get(member_id, 0) + 10 + index
    got = dict(
        raw(
            "SELECT user_id, points FROM ranking_members WHERE area_id = :d AND period_key = 'all'",
            d=w.district.id,
        )
    )
    assert got == expected
    assert first_mismatch() is None
    before = rollups()
    rebuild()
    assert rollups() == before
    assert verifier.verify() is None


def test_monthly_chart_reads_month_rollups(world, clock):
    w = world
    clock.set(local("2026-10-31 23:59"))
    earn(w.member_a, w.community_a, 10)
    clock.set(local("2026-11-01 00:01"))
    earn(w.member_a, w.community_a, 4)
    earn(w.member_a, w.community_b, 3)  # another community of the same district
    clock.set(local("2025-11-15 12:00"))  # 12 months back from 2026-11 is 2025-12: outside
    earn(w.member_a, w.community_a, 99)
    series = rankings.monthly_points(w.member_a, now=datetime(2026, 11, 27, tzinfo=UTC))
    assert [label for label, _v in series][0] == "2025-12"
    assert [label for label, _v in series][-1] == "2026-11"
    assert dict(series)["2026-10"] == 10 and dict(series)["2026-11"] == 7
    assert sum(v for _l, v in series) == 17
