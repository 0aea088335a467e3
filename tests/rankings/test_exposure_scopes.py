"""Exposure at every scope: a member hidden by his community's top-N (or tiers) setting
is not revealed by the street, district or grid ranking, over the API and on the page;
those who see the community's full list still see him; ranks stay the real positions."""

from __future__ import annotations

import pytest

from volunteer_market.database import atomic
from volunteer_market.services import rankings

from ..conftest import login
from ..factories import bearer
from .conftest import board, earn, local


@pytest.fixture
def ranked(world, clock):
    """A: member_a 30, member_a2 20, member_a3 10; B: member_b 25. A shows its top 1."""
    w = world
    clock.set(local("2026-11-02 09:00"))
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    earn(w.member_a3, w.community_a, 10)
    earn(w.member_b, w.community_b, 25)
    clock.set(None)
    with atomic():
        rankings.set_exposure(None, w.community_a, "top_n", top_n=1)
    return w


def names(area, viewer, **kw):
    return [i["display_name"] for i in board(area, viewer=viewer, **kw)["items"]]


@pytest.mark.parametrize("who", ["member_b", "resident_a", "member_a3", "secretary_b"])
def test_street_and_district_do_not_reveal_whom_the_community_hides(ranked, who):
    w = ranked
    viewer = w.users[who]
    assert names(w.community_a, viewer) == ["member_a"]
    for area in (w.street, w.district):
        got = board(area, viewer=viewer)
        assert [i["display_name"] for i in got["items"]] == ["member_a", "member_b"]
        assert [i["rank"] for i in got["items"]] == [1, 2]  # real positions
        assert got["total"] == 2


def test_ranks_after_a_hidden_member_keep_their_real_position(ranked, clock):
    w = ranked
    clock.set(local("2026-11-03 09:00"))
    earn(w.member_c, w.community_c, 15)
    clock.set(None)
    got = board(w.district, viewer=w.member_c)
    assert [(i["display_name"], i["rank"]) for i in got["items"]] == [
        ("member_a", 1),
        ("member_b", 2),
        ("member_c", 4),  # member_a2 (20) is hidden by A, not skipped in the count
    ]


def test_a_grid_does_not_reveal_them_either(ranked):
    w = ranked
    # every A member's grants are on community A or its grids; the grid board of A1
    # lists only whom A shows
    grid = w.areas["grid_a1"]
    assert "member_a2" not in names(grid, w.resident_a)
    assert "member_a3" not in names(grid, w.resident_a)


def test_my_own_rank_is_still_mine(ranked):
    w = ranked
    got = board(w.street, viewer=w.member_a3)
    assert got["me"]["rank"] == 4 and got["me"]["points"] == 10


@pytest.mark.parametrize("who", ["secretary_a", "officer_street", "officer_district", "admin"])
def test_those_who_see_the_full_list_of_the_community_still_do(ranked, who):
    w = ranked
    got = names(w.street, w.users[who])
    assert got == ["member_a", "member_b", "member_a2", "member_a3"]


def test_tiers_hide_those_below_bronze_at_every_scope(ranked):
    w = ranked
    with atomic():
        rankings.set_exposure(
            None, w.community_a, "tiers", gold_pct=10, silver_pct=30, bronze_pct=60
        )
    # A has 3 members: bronze is the top 60 % = 2 members (30 and 20 points)
    assert sorted(names(w.community_a, w.member_b)) == ["member_a", "member_a2"]
    assert "member_a3" not in names(w.street, w.member_b)
    assert "member_a2" in names(w.street, w.member_b)


def test_full_list_again_shows_everyone(ranked):
    w = ranked
    with atomic():
        rankings.set_exposure(None, w.community_a, "full")
    assert len(names(w.street, w.member_b)) == 4


def test_paging_of_a_street_with_hidden_members(ranked, clock):
    w = ranked
    got = board(w.street, viewer=w.member_b, per_page=1, page=2)
    assert [i["display_name"] for i in got["items"]] == ["member_b"]
    assert got["total"] == 2
    assert board(w.street, viewer=w.member_b, per_page=1, page=3)["items"] == []


def test_over_the_api_and_on_the_page(ranked, client):
    w = ranked
    for area in (w.street, w.district):
        body = client.get(
            f"/api/v1/rankings?area_id={area.id}", headers=bearer(w.member_b)
        ).get_json()
        assert [i["display_name"] for i in body["items"]] == ["member_a", "member_b"]
    login(client, "member_b")
    html = client.get(f"/rankings?area_id={w.street.id}").get_data(as_text=True)
    assert "member_a" in html and "member_b" in html
    assert "member_a2" not in html and "member_a3" not in html
