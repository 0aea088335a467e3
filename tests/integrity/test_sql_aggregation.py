"""The integrity signals aggregated in SQL (GROUP BY, window functions) give exactly the
signals of the first, row-by-row version (``reference.py``) on random communities, in
the same order; with the caps, each kind keeps its first signals, each signal its lowest
delivery ids, and ``totals`` the uncapped counts."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import (
    Delivery,
    DeliveryNoShow,
    DeliveryParticipant,
    Rating,
    Role,
    utcnow,
)
from volunteer_market.services import integrity

from ..factories import make_project, make_user
from . import reference


def _key(s):
    return (s.kind, s.user_ids, s.delivery_ids, sorted(s.detail.items()))


def random_community(world, seed: int):
    """Deliveries of community A over the last 100 days written straight to the tables
    (participants, raters -- residents and members who are also residents --, proxies,
    scores skewed to 5, no-shows, odd hours and overlaps), as a reader finds them."""
    rng = random.Random(seed)
    a = world.community_a
    members = [world.member_a, world.member_a2, world.member_a3] + [
        make_user(f"m{seed}_{i}", (Role.MEMBER, a), (Role.RESIDENT, world.areas["grid_a1"]))
        for i in range(4)
    ]
    raters = [world.resident_a, world.resident_a2, *members[3:]] + [
        make_user(f"r{seed}_{i}", (Role.RESIDENT, world.areas["grid_a1"])) for i in range(4)
    ]
    project = make_project(world.member_a, a, status="approved", title=f"随机{seed}")
    now = utcnow()
    with atomic():
        for _i in range(160):
            start = now - timedelta(days=rng.uniform(0, 100), minutes=rng.randint(0, 59))
            end = start + timedelta(minutes=rng.choice([30, 60, 120, 240]))
            team = rng.sample(members, rng.randint(1, 3))
            d = Delivery(
                project_id=project.id,
                community_id=a.id,
                recorded_by_id=team[0].id,
                started_at=start,
                ended_at=end,
                rating_deadline=end + timedelta(days=7),
            )
            db.session.add(d)
            db.session.flush()
            for m in team:
                db.session.add(DeliveryParticipant(delivery_id=d.id, user_id=m.id, minutes=30))
            pool = [r for r in raters if r not in team]
            for r in rng.sample(pool, rng.randint(0, 3)):
                proxy = rng.random() < 0.15
                at = end + timedelta(minutes=rng.randint(1, 5000), microseconds=rng.randint(0, 999))
                db.session.add(
                    Rating(
                        delivery_id=d.id,
                        beneficiary_id=r.id,
                        entered_by_id=world.grid_a1.id if proxy else r.id,
                        score=rng.choice([5] * 12 + [4, 3, 1]),
                        is_proxy=proxy,
                        created_at=at,
                        updated_at=at,
                    )
                )
            for m in rng.sample(members, rng.randint(0, 1)):
                if m not in team:
                    db.session.add(DeliveryNoShow(delivery_id=d.id, user_id=m.id))
    return now


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_signals_equal_the_row_by_row_ones(world, seed, monkeypatch):
    now = random_community(world, seed)
    expected = reference.signals(world.community_a, now)
    assert {s.kind for s in expected} >= {"repeat_rater", "all_five_streak", "overlap"}
    monkeypatch.setattr(integrity, "SIGNAL_CAP", 10**6)
    monkeypatch.setattr(integrity, "IDS_CAP", 10**6)
    got = integrity.report(world.secretary_a, world.community_a, now=now)
    assert [_key(s) for s in got.items] == [_key(s) for s in expected]
    counts = {k: sum(1 for s in expected if s.kind == k) for k in integrity.KINDS}
    assert got.totals == counts


def test_caps_keep_the_first_signals_and_the_lowest_ids(world, monkeypatch):
    now = random_community(world, 4)
    expected = reference.signals(world.community_a, now)
    monkeypatch.setattr(integrity, "SIGNAL_CAP", 2)
    monkeypatch.setattr(integrity, "IDS_CAP", 1)
    got = integrity.report(world.secretary_a, world.community_a, now=now)
    want = []
    for kind in integrity.KINDS:
        for s in [s for s in expected if s.kind == kind][:2]:
            want.append((s.kind, s.user_ids, sorted(s.delivery_ids)[:1], sorted(s.detail.items())))
    # overlap keeps its pair in time order (both ids): its ids are never capped below two
    got_keys = [
        (
            s.kind,
            s.user_ids,
            s.delivery_ids[:1] if s.kind != "overlap" else s.delivery_ids,
            sorted(s.detail.items()),
        )
        for s in got.items
    ]
    want = [
        w
        if w[0] != "overlap"
        else next(
            (s.kind, s.user_ids, s.delivery_ids, sorted(s.detail.items()))
            for s in expected
            if s.kind == "overlap" and s.user_ids == w[1] and sorted(s.delivery_ids)[:1] == w[2]
        )
        for w in want
    ]
    assert got_keys == want
    assert got.totals == {k: sum(1 for s in expected if s.kind == k) for k in integrity.KINDS}
    assert any(got.totals[k] > 2 for k in integrity.KINDS)  # the cap did cut something
