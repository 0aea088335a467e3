"""The settlement arithmetic: exhaustive table tests at every threshold, exact
half-up rounding, caps; and the versioned policy in force."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import PointsPolicy
from volunteer_market.services import points_policy as pp
from volunteer_market.services.errors import Forbidden, ValidationFailed

DEFAULT = PointsPolicy(**pp.default_policy_values())


def test_contract_two_hours_rated_5_and_4_earn_24():
    assert pp.points_for(120, pp.average_score([5, 4]), DEFAULT) == 24


@pytest.mark.parametrize(
    ("avg", "expected"),
    [
        (5, Fraction(6, 5)),
        (Fraction(9, 2), Fraction(6, 5)),
        (4.5, Fraction(6, 5)),
        (Decimal("4.5"), Fraction(6, 5)),
        (4.49, Fraction(1)),
        (Fraction(8999, 2000), Fraction(1)),  # 4.4995
        (4.499999999, Fraction(1)),
        (4, Fraction(1)),
        (3.5, Fraction(1)),
        (3.49, Fraction(1, 2)),
        (Fraction(6999, 2000), Fraction(1, 2)),
        (3, Fraction(1, 2)),
        (2.5, Fraction(1, 2)),
        (2.49, Fraction(0)),
        (Fraction(4999, 2000), Fraction(0)),
        (2, Fraction(0)),
        (1, Fraction(0)),
        (None, Fraction(1)),  # nobody rated: the secretary confirmed (100 %)
    ],
)
def test_multiplier_thresholds(avg, expected):
    assert pp.multiplier(avg, DEFAULT) == expected


@pytest.mark.parametrize(
    ("minutes", "avg", "points"),
    [
        (120, 4.5, 24),
        (120, 5, 24),
        (120, 4.49, 20),
        (120, 4, 20),
        (120, 3.5, 20),
        (120, 3.49, 10),
        (120, 2.5, 10),
        (120, 2.49, 0),
        (120, 1, 0),
        (120, None, 20),
        (0, 5, 0),
        (0, None, 0),
        (60, 5, 12),
        (60, 4, 10),
        (60, 3, 5),
        (480, 5, 96),  # 8 h cap exactly
        (481, 5, 96),  # capped
        (600, 4, 80),
        (10_000, 3, 40),
        (479, 4, 80),  # 79.83 -> 80
        (1, 4, 0),  # 0.1667 -> 0
        # half-up at exact halves (Python's round() would give the even neighbour)
        (3, 4, 1),  # 0.5 -> 1   (round() -> 0)
        (9, 4, 2),  # 1.5 -> 2
        (15, 4, 3),  # 2.5 -> 3  (round() -> 2)
        (27, 4, 5),  # 4.5 -> 5  (round() -> 4)
        (6, 3, 1),  # 0.5 at multiplier 0.5 -> 1
        (30, 3, 3),  # 2.5 at multiplier 0.5 -> 3
        (90, 3, 8),  # 7.5 -> 8
        # just below and above a half
        (2, 4, 0),  # 0.333
        (4, 4, 1),  # 0.667
        (2, 5, 0),  # 0.4
        (3, 5, 1),  # 0.6
        (25, 5, 5),  # exactly 5.0 at 1.2
    ],
)
def test_points_table(minutes, avg, points):
    assert pp.points_for(minutes, avg, DEFAULT) == points


@pytest.mark.parametrize(
    ("scores", "points"),
    [
        ([5, 4], 24),
        ([5, 5, 4, 4, 4], 20),  # 4.4
        ([5, 4, 4, 5, 5, 4], 24),  # 4.5
        ([5, 5, 5, 4, 4, 4, 4], 20),  # 31/7 = 4.43
        ([4, 4, 3, 3], 20),  # 3.5
        ([4, 3, 3], 10),  # 3.33
        ([3, 2], 10),  # 2.5
        ([2, 3, 2], 0),  # 2.33
        ([1], 0),
        ([5], 24),
        ([], 20),  # unrated, confirmed by the secretary
    ],
)
def test_points_from_scores_two_hours(scores, points):
    assert pp.points_for(120, pp.average_score(scores), DEFAULT) == points


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(0), 0),
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),
        (Fraction(49, 100), 0),
        (Fraction(51, 100), 1),
        (Fraction(-1, 2), -1),
        (Fraction(-5, 2), -3),
        (Fraction(-49, 100), 0),
        (Fraction(24), 24),
    ],
)
def test_round_half_up(value, expected):
    assert pp.round_half_up(value) == expected


def test_average_score():
    assert pp.average_score([]) is None
    assert pp.average_score([5, 4]) == Fraction(9, 2)
    assert pp.average_score([1, 2, 2]) == Fraction(5, 3)
    for bad in ([0], [6], [True], [4.5], ["5"]):
        with pytest.raises(ValueError):
            pp.average_score(bad)


@pytest.mark.parametrize("minutes", [-1, 1.5, True, "60", None])
def test_bad_minutes(minutes):
    with pytest.raises(ValueError):
        pp.points_for(minutes, 5, DEFAULT)


@pytest.mark.parametrize("avg", [0, 0.99, 5.01, 6, -1])
def test_bad_average(avg):
    with pytest.raises(ValueError):
        pp.multiplier(avg, DEFAULT)


def test_bool_score_refused():
    with pytest.raises(TypeError):
        pp.multiplier(True, DEFAULT)


def test_custom_policy_terms():
    policy = PointsPolicy(
        hours_cap_minutes=240,
        base_rate=15,
        multipliers=[[3.0, 1.1], [4.0, 1.5]],  # given out of order: sorted by minimum
        unrated_multiplier_percent=50,
    )
    assert pp.multiplier(4.2, policy) == Fraction(3, 2)
    assert pp.multiplier(3.0, policy) == Fraction(11, 10)  # decimal 1.1, not a float
    assert pp.multiplier(2.9, policy) == 0
    assert pp.points_for(60, 3.5, policy) == 17  # 16.5 -> 17
    assert pp.points_for(600, 5, policy) == 90  # 4 h cap x 15 x 1.5
    assert pp.points_for(60, None, policy) == 8  # 7.5 -> 8


def _decimal_reference(minutes: int, avg: Fraction | None) -> int:
    """An independent implementation with Decimal ROUND_HALF_UP."""
    capped = min(minutes, 480)
    if avg is None:
        m = Decimal(1)
    elif avg >= Fraction(9, 2):
        m = Decimal("1.2")
    elif avg >= Fraction(7, 2):
        m = Decimal(1)
    elif avg >= Fraction(5, 2):
        m = Decimal("0.5")
    else:
        m = Decimal(0)
    # Exact halves terminate in decimal, so 28-digit Decimal division decides ties exactly.
    return int((Decimal(capped) * 10 * m / 60).quantize(Decimal(1), ROUND_HALF_UP))


@given(
    minutes=st.integers(min_value=0, max_value=2000),
    scores=st.lists(st.integers(min_value=1, max_value=5), max_size=12),
)
def test_points_match_decimal_reference(minutes, scores):
    avg = pp.average_score(scores)
    assert pp.points_for(minutes, avg, DEFAULT) == _decimal_reference(minutes, avg)


@given(
    minutes=st.integers(min_value=0, max_value=1000),
    more=st.integers(min_value=0, max_value=1000),
    scores=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=8),
    better=st.integers(min_value=0, max_value=4),
)
def test_points_are_monotone(minutes, more, scores, better):
    avg = pp.average_score(scores)
    assert pp.points_for(minutes, avg, DEFAULT) <= pp.points_for(minutes + more, avg, DEFAULT)
    higher = min(Fraction(5), avg + better)
    assert pp.points_for(minutes, avg, DEFAULT) <= pp.points_for(minutes, higher, DEFAULT)
    assert 0 <= pp.points_for(minutes, avg, DEFAULT) <= 96


# --- the policy in force (database) ------------------------------------------------------


def test_default_policy_created_lazily_inside_atomic(world):
    assert db.session.query(PointsPolicy).count() == 0
    outside = pp.current_policy(world.community_a.id)
    assert outside.id is None and outside.base_rate == 10  # unsaved default outside atomic()
    with atomic():
        first = pp.current_policy(world.community_a.id)
    with atomic():
        again = pp.current_policy(world.community_b.id)
    assert first.id is not None and first.id == again.id
    assert (first.community_id, first.version) == (None, 1)
    assert first.multipliers == [[4.5, 1.2], [3.5, 1.0], [2.5, 0.5]]
    assert first.hours_cap_minutes == 480 and first.rating_window_days == 7
    assert pp.points_for(120, 4.5, first) == 24


def test_community_versions_override_default(world):
    with atomic():
        default = pp.ensure_default_policy()
        v1 = pp.new_policy_version(world.admin, world.community_a, base_rate=12)
    with atomic():
        v2 = pp.new_policy_version(world.admin, world.community_a, hours_cap_minutes=240)
    assert (v1.version, v2.version) == (1, 2)
    assert v2.base_rate == 12 and v2.hours_cap_minutes == 240  # copied forward
    assert pp.current_policy(world.community_a.id).id == v2.id
    assert pp.current_policy(world.community_b.id).id == default.id
    assert pp.get_policy(v1.id).base_rate == 12  # history untouched
    with atomic():
        d2 = pp.new_policy_version(None, None, rating_window_days=10)
    assert (d2.community_id, d2.version) == (None, 2)
    assert pp.current_policy(world.community_b.id).rating_window_days == 10


@pytest.mark.parametrize(
    "terms",
    [
        {"base_rate": -1},
        {"hours_cap_minutes": 0},
        {"hours_cap_minutes": 2000},
        {"multipliers": [[4.5, 1.2], [4.5, 1.0]]},
        {"multipliers": [[3.5, 1.0], [4.5, 1.2]]},
        {"multipliers": [[6, 1.0]]},
        {"multipliers": "x"},
        {"rating_window_days": True},
        {"expiry_rule": "sometimes"},
        {"colour": "red"},
    ],
)
def test_policy_validation(world, terms):
    with pytest.raises(ValidationFailed), atomic():
        pp.new_policy_version(world.admin, world.community_a, **terms)
    assert db.session.query(PointsPolicy).filter_by(community_id=world.community_a.id).count() == 0


def test_who_manages_policy(world):
    """A community's policy: its secretary, an officer over it, the admin; the default
    policy: the admin only."""
    for who in (world.secretary_b, world.officer_other, world.member_a, world.resident_a):
        with pytest.raises(Forbidden), atomic():
            pp.new_policy_version(who, world.community_a, base_rate=20)
    for who in (world.secretary_a, world.officer_district):
        with pytest.raises(Forbidden), atomic():
            pp.new_policy_version(who, None, base_rate=20)
    with atomic():
        mine = pp.new_policy_version(world.secretary_a, world.community_a, base_rate=20)
    with atomic():
        theirs = pp.new_policy_version(world.officer_street, world.community_a, base_rate=30)
    assert (mine.version, theirs.version) == (1, 2)
