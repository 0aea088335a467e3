"""Ranking rules at the service level: competition ranks and the tie order, period
edges in Asia/Shanghai, subtree aggregation, reversals, redemption and expiry,
exclusions, exposure modes, ``me`` off the page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from volunteer_market.database import atomic
from volunteer_market.models import AccountKind, Role, TransactionKind
from volunteer_market.services import ledger as ledger_service
from volunteer_market.services import rankings
from volunteer_market.services import users as user_service
from volunteer_market.services.errors import Forbidden, ValidationFailed

from ..factories import make_user, points_of
from .conftest import (
    board,
    earn,
    local,
    reverse,
    revoke_member_grant,
    set_active,
    standings,
)


def test_standard_competition_ranking_and_tie_order(world, clock):
    w = world
    clock.set(local("2026-11-02 09:00"))
    earn(w.member_a3, w.community_a, 20)  # reaches 20 first
    clock.set(local("2026-11-02 10:00"))
    earn(w.member_a, w.community_a, 30)
    clock.set(local("2026-11-03 10:00"))
    earn(w.member_a2, w.community_a, 20)
    earn(w.member_b, w.community_b, 10)
    assert standings(w.street) == [
        (1, "member_a", 30),
        (2, "member_a3", 20),  # reached 20 before member_a2
        (2, "member_a2", 20),
        (4, "member_b", 10),
    ]
    clock.set(local("2026-11-04 10:00"))
    earn(w.member_b, w.community_b, 10)  # member_b reaches 20 last
    result = board(w.street, "2026-11")
    assert [(i["rank"], i["points"]) for i in result["items"]] == [
        (1, 30),
        (2, 20),
        (2, 20),
        (2, 20),
    ]
    tied = [i["display_name"] for i in result["items"][1:]]
    assert tied == ["member_a3", "member_a2", "member_b"]
    assert result["total"] == 4


def test_ties_at_the_same_instant_go_by_user_id(world, clock):
    w = world
    clock.set(local("2026-11-05 08:00"))
    earn(w.member_a3, w.community_a, 15)
    earn(w.member_a, w.community_a, 15)
    earn(w.member_a2, w.community_a, 15)
    names = [i["display_name"] for i in board(w.community_a)["items"]]
    ids = sorted([w.member_a.id, w.member_a2.id, w.member_a3.id])
    assert [i["user_id"] for i in board(w.community_a)["items"]] == ids
    assert names == ["member_a", "member_a2", "member_a3"]
    assert [i["rank"] for i in board(w.community_a)["items"]] == [1, 1, 1]


def test_month_boundary_in_shanghai_time(world, clock):
    w = world
    clock.set(local("2026-11-30 23:59"))  # 15:59 UTC on 30 Nov
    earn(w.member_a, w.community_a, 10, minutes=60)
    clock.set(local("2026-12-01 00:01"))  # still 30 Nov in UTC
    earn(w.member_a2, w.community_a, 7, minutes=30)
    assert standings(w.community_a, "2026-11") == [(1, "member_a", 10)]
    assert standings(w.community_a, "2026-12") == [(1, "member_a2", 7)]
    assert standings(w.community_a, "2026-Q4") == [(1, "member_a", 10), (2, "member_a2", 7)]
    assert standings(w.community_a, "2026") == [(1, "member_a", 10), (2, "member_a2", 7)]
    dec = board(w.community_a, "2026-12")["items"][0]
    assert dec["hours"] == 0.5


def test_year_boundary_in_shanghai_time(world, clock):
    w = world
    clock.set(local("2026-12-31 23:59"))
    earn(w.member_a, w.community_a, 10)
    clock.set(local("2027-01-01 00:01"))  # 31 Dec 16:01 UTC
    earn(w.member_a2, w.community_a, 7)
    assert standings(w.district, "2026") == [(1, "member_a", 10)]
    assert standings(w.district, "2026-Q4") == [(1, "member_a", 10)]
    assert standings(w.district, "2026-12") == [(1, "member_a", 10)]
    assert standings(w.district, "2027") == [(1, "member_a2", 7)]
    assert standings(w.district, "2027-Q1") == [(1, "member_a2", 7)]
    assert standings(w.district, "2027-01") == [(1, "member_a2", 7)]
    assert standings(w.district, "all") == [(1, "member_a", 10), (2, "member_a2", 7)]


def test_period_keys_use_the_community_time_zone():
    moment = local("2027-01-01 00:01")
    assert rankings.period_keys(moment) == ["all", "2027", "2027-Q1", "2027-01"]
    assert rankings.period_keys(moment, "UTC") == ["all", "2026", "2026-Q4", "2026-12"]


def test_subtree_aggregation_grid_community_street_district(world, clock):
    w = world
    member_g = make_user("member_g", (Role.MEMBER, w.areas["grid_a1"]))  # grid-level member grant
    clock.set(None)
    earn(member_g, w.community_a, 12)
    earn(w.member_a, w.community_a, 20)
    earn(w.member_b, w.community_b, 5)
    earn(w.member_c, w.community_c, 7)
    assert standings(w.areas["grid_a1"]) == [(1, "member_g", 12)]
    assert standings(w.grid_a2) == []
    assert standings(w.community_a) == [(1, "member_a", 20), (2, "member_g", 12)]
    assert standings(w.street) == [(1, "member_a", 20), (2, "member_g", 12), (3, "member_b", 5)]
    assert standings(w.street2) == [(1, "member_c", 7)]
    assert standings(w.district) == [
        (1, "member_a", 20),
        (2, "member_g", 12),
        (3, "member_c", 7),
        (4, "member_b", 5),
    ]


def test_a_reversal_lowers_rank_in_the_earns_period(world, clock):
    w = world
    clock.set(local("2026-11-10 10:00"))
    big = earn(w.member_a, w.community_a, 15)
    earn(w.member_a, w.community_a, 15)
    earn(w.member_a2, w.community_a, 20)
    assert standings(w.community_a, "2026-11")[0] == (1, "member_a", 30)
    clock.set(local("2026-12-02 10:00"))  # reversed next month: corrects November
    reverse(big)
    assert standings(w.community_a, "2026-11") == [(1, "member_a2", 20), (2, "member_a", 15)]
    assert standings(w.community_a, "2026-12") == []
    assert standings(w.street, "all") == [(1, "member_a2", 20), (2, "member_a", 15)]
    me = board(w.community_a, "2026-11", viewer=w.member_a)["me"]
    assert me == {"rank": 2, "points": 15, "hours": 2.0, "tier": None}


def test_a_fully_reversed_member_drops_out(world, clock):
    w = world
    tx = earn(w.member_a, w.community_a, 15)
    earn(w.member_a2, w.community_a, 5)
    reverse(tx)
    result = board(w.community_a, viewer=w.member_a)
    assert [i["display_name"] for i in result["items"]] == ["member_a2"]
    assert result["me"] is None and result["total"] == 1


def _post(kind, legs, key, **refs):
    with atomic():
        return ledger_service.post_transaction(
            kind=kind, legs=legs, idempotency_key=key, actor=None, **refs
        )


def test_redemption_and_expiry_do_not_lower_rank(world, clock):
    w = world
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 25)
    with atomic():
        wallet = ledger_service.account_for_member(w.member_a.id)
        held = ledger_service.account_for_member(w.member_a.id, AccountKind.MEMBER_HELD)
        sink = ledger_service.sink_account(AccountKind.REDEMPTION_SINK, w.community_a.id)
        expiry = ledger_service.sink_account(AccountKind.EXPIRY_SINK, w.community_a.id)
    common = {"member_id": w.member_a.id, "community_id": w.community_a.id}
    _post(TransactionKind.HOLD, [(wallet, -20), (held, 20)], "t:hold", redemption_id=1, **common)
    _post(TransactionKind.REDEEM, [(held, -20), (sink, 20)], "t:redeem", redemption_id=1, **common)
    expired = _post(TransactionKind.EXPIRE, [(wallet, -8), (expiry, 8)], "t:expire", **common)
    assert points_of(w.member_a) == {"available": 2, "held": 0, "earned_total": 30}
    assert standings(w.community_a) == [(1, "member_a", 30), (2, "member_a2", 25)]
    reverse(expired)  # undoing an expiry is not an earn either
    assert standings(w.community_a) == [(1, "member_a", 30), (2, "member_a2", 25)]


def test_adjustments_are_not_service_record(world):
    w = world
    earn(w.member_a2, w.community_a, 5)
    with atomic():
        ledger_service.adjust(None, w.member_a, 50, "补录")
    assert standings(w.community_a) == [(1, "member_a2", 5)]


def test_suspended_members_are_excluded(world):
    w = world
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    earn(w.member_a3, w.community_a, 10)
    set_active(w.member_a, False)
    result = board(w.community_a, viewer=w.member_a3)
    assert [(i["rank"], i["display_name"]) for i in result["items"]] == [
        (1, "member_a2"),
        (2, "member_a3"),
    ]
    assert result["total"] == 2
    assert result["me"]["rank"] == 2
    assert board(w.district, viewer=w.member_a3)["me"]["rank"] == 2


def test_members_whose_role_ended_are_excluded_there(world):
    w = world
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    earn(w.member_c, w.community_c, 5)
    revoke_member_grant(w.member_a, w.community_a)
    assert standings(w.community_a) == [(1, "member_a2", 20)]
    assert standings(w.street) == [(1, "member_a2", 20)]
    assert board(w.community_a, viewer=w.member_a)["me"] is None
    # The member moved to community C: still ranked in the district that covers both.
    with atomic():
        user_service.grant_role(None, w.member_a, Role.MEMBER, w.community_c)
    assert standings(w.district) == [(1, "member_a", 30), (2, "member_a2", 20), (3, "member_c", 5)]
    assert standings(w.street) == [(1, "member_a2", 20)]


def _set_exposure(area, mode, **kw):
    with atomic():
        return rankings.set_exposure(None, area, mode, **kw)


@pytest.fixture
def ten(world, clock):
    """Ten members of community A with 100, 90, 90, 70, 60, ... 10 points."""
    w = world
    users = [w.member_a, w.member_a2, w.member_a3]
    users += [make_user(f"m{i}", (Role.MEMBER, w.community_a)) for i in range(4, 11)]
    start = local("2026-11-01 08:00")
    for i, (user, pts) in enumerate(
        zip(users, [100, 90, 90, 70, 60, 50, 40, 30, 20, 10], strict=True)
    ):
        clock.set(start + timedelta(minutes=i))
        earn(user, w.community_a, pts)
    return users


def test_full_list_is_the_default(world, ten):
    result = board(world.community_a, viewer=world.resident_a)
    assert result["exposure"] == {
        "mode": "full",
        "configured": "full",
        "top_n": None,
        "tiers": None,
    }
    assert [i["rank"] for i in result["items"]] == [1, 2, 2, 4, 5, 6, 7, 8, 9, 10]


def test_top_n_for_residents_and_members_full_for_staff(world, ten):
    w = world
    _set_exposure(w.community_a, "top_n", top_n=2)  # rank 2 is tied: 3 rows shown
    for viewer in (w.resident_a, w.member_a3, ten[-1]):
        result = board(w.community_a, viewer=viewer)
        assert [i["rank"] for i in result["items"]] == [1, 2, 2]
        assert result["total"] == 3
        assert result["exposure"]["mode"] == "top_n" and result["exposure"]["top_n"] == 2
    assert board(w.community_a, viewer=ten[-1])["me"]["rank"] == 10  # own rank still given
    # Grids inherit the community's setting; the street has none of its own.
    assert board(w.street, viewer=w.resident_a)["exposure"]["mode"] == "full"
    for staff in (w.secretary_a, w.officer_street, w.officer_district, w.admin):
        result = board(w.community_a, viewer=staff)
        assert result["exposure"] == {
            "mode": "full",
            "configured": "top_n",
            "top_n": 2,
            "tiers": None,
        }
        assert result["total"] == 10
    # Another community's secretary is a reader like any other there.
    assert board(w.community_a, viewer=w.secretary_b)["total"] == 3


def test_tiers_hide_ranks_and_points(world, ten):
    w = world
    _set_exposure(w.community_a, "tiers", gold_pct=10, silver_pct=30, bronze_pct=60)
    result = board(w.community_a, viewer=ten[4])  # 60 points, 5th
    tiers = [(i["display_name"], i["tier"]) for i in result["items"]]
    assert all(i["rank"] is None and i["points"] is None for i in result["items"])
    # 10 members: gold = rank <= 1, silver = rank <= 3, bronze = rank <= 6.
    assert tiers[0] == ("member_a", "gold")
    assert sorted(tiers[1:3]) == [("member_a2", "silver"), ("member_a3", "silver")]
    assert [t for _n, t in tiers[3:]] == ["bronze"] * 3
    assert result["total"] == 6
    assert result["me"] == {"rank": 5, "points": 60, "hours": 2.0, "tier": "bronze"}
    assert board(w.community_a, viewer=ten[-1])["me"]["tier"] is None
    staff = board(w.community_a, viewer=w.secretary_a)
    assert staff["exposure"]["mode"] == "full" and staff["total"] == 10


def test_me_off_the_page(world, ten):
    result = board(world.community_a, viewer=ten[7], page=1, per_page=3)  # 30 points, 8th
    assert [i["user_id"] for i in result["items"]] == [u.id for u in ten[:3]]
    assert result["me"] == {"rank": 8, "points": 30, "hours": 2.0, "tier": None}
    assert result["total"] == 10
    page2 = board(world.community_a, page=2, per_page=2)
    assert [i["rank"] for i in page2["items"]] == [2, 4]
    page4 = board(world.community_a, page=4, per_page=3)
    assert [i["rank"] for i in page4["items"]] == [10]
    assert board(world.community_a, page=5, per_page=3)["items"] == []


def test_viewer_without_points_has_no_me(world, ten):
    assert board(world.community_a, viewer=world.resident_a)["me"] is None
    assert board(world.community_b, viewer=world.member_a)["me"] is None


def test_bad_period_and_paging_are_refused(world):
    for period in ("2026-13", "2026-Q5", "foo", "2026-1", "26", "2026-Q0", ""):
        if period == "":
            assert rankings.parse_period(period) == "all"
            continue
        with pytest.raises(ValidationFailed):
            rankings.ranking(world.community_a, period)
    with pytest.raises(ValidationFailed):
        rankings.ranking(world.community_a, "all", per_page=101)
    with pytest.raises(ValidationFailed):
        rankings.ranking(world.community_a, "all", page=0)


def test_exposure_setting_rules(world):
    w = world
    with pytest.raises(Forbidden), atomic():
        rankings.set_exposure(w.member_a, w.community_a, "top_n", top_n=5)
    with pytest.raises(Forbidden), atomic():
        rankings.set_exposure(w.secretary_b, w.community_a, "top_n", top_n=5)
    with pytest.raises(Forbidden), atomic():
        rankings.set_exposure(w.secretary_a, w.street, "top_n", top_n=5)
    with pytest.raises(ValidationFailed), atomic():
        rankings.set_exposure(w.secretary_a, w.community_a, "top_n", top_n=0)
    with pytest.raises(ValidationFailed), atomic():
        rankings.set_exposure(w.secretary_a, w.community_a, "tiers", gold_pct=50, silver_pct=40)
    with atomic():
        rankings.set_exposure(w.secretary_a, w.community_a, "top_n", top_n=5)
    with atomic():
        rankings.set_exposure(w.officer_street, w.street, "tiers")
    assert rankings.exposure_for(w.areas["grid_a1"]).mode == "top_n"
    assert rankings.exposure_for(w.community_b).mode == "tiers"
    assert rankings.exposure_for(w.community_c).mode == "full"
