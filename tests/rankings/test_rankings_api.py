"""GET /api/v1/rankings and the team and community tables over HTTP: the contract,
bad input (422/404, never 500), permissions (403), and no ledger reads."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from volunteer_market.extensions import db
from volunteer_market.models import Role

from ..factories import bearer, make_delivery, make_project, make_user
from .conftest import earn, local


@pytest.fixture
def ranked(world, clock):
    w = world
    clock.set(local("2026-11-02 09:00"))
    earn(w.member_a, w.community_a, 30, minutes=150)
    clock.set(local("2026-11-02 10:00"))
    earn(w.member_a2, w.community_a, 20)
    clock.set(local("2026-11-02 11:00"))
    earn(w.member_a3, w.community_a, 20)
    earn(w.member_b, w.community_b, 10)
    clock.set(None)
    return w


def test_member_ranking_contract(ranked, client):
    w = ranked
    resp = client.get(
        f"/api/v1/rankings?area_id={w.street.id}&period=2026-11&per_page=2",
        headers=bearer(w.member_b),
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) >= {"items", "me", "page", "per_page", "total", "exposure"}
    assert body["page"] == 1 and body["per_page"] == 2 and body["total"] == 4
    assert body["items"] == [
        {
            "rank": 1,
            "user_id": w.member_a.id,
            "display_name": "member_a",
            "points": 30,
            "hours": 2.5,
            "tier": None,
        },
        {
            "rank": 2,
            "user_id": w.member_a2.id,
            "display_name": "member_a2",
            "points": 20,
            "hours": 2.0,
            "tier": None,
        },
    ]
    assert body["me"] == {"rank": 4, "points": 10, "hours": 2.0, "tier": None}
    assert body["exposure"]["mode"] == "full"
    assert body["area"] == {"id": w.street.id, "name": w.street.name, "kind": "street"}
    page2 = client.get(
        f"/api/v1/rankings?area_id={w.street.id}&period=2026-Q4&per_page=2&page=2",
        headers=bearer(w.member_b),
    ).get_json()
    assert [(i["rank"], i["display_name"]) for i in page2["items"]] == [
        (2, "member_a3"),
        (4, "member_b"),
    ]


def test_defaults_to_my_community_and_all_time(ranked, client):
    body = client.get("/api/v1/rankings", headers=bearer(ranked.member_a2)).get_json()
    assert body["area"]["id"] == ranked.community_a.id
    assert body["period"] == "all"
    assert body["me"]["rank"] == 2
    nobody = make_user("nobody")  # no area of their own: the first district
    resp = client.get("/api/v1/rankings", headers=bearer(nobody))
    assert resp.status_code == 200 and resp.get_json()["area"]["id"] == ranked.district.id


def test_requires_a_token(client, world):
    assert client.get("/api/v1/rankings").status_code == 401


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("period=2026-13", 422, "period"),
        ("period=2026-Q5", 422, "period"),
        ("period=foo", 422, "period"),
        ("period=2026-1", 422, "period"),
        ("per_page=101", 422, "per_page"),
        ("per_page=0", 422, "per_page"),
        ("page=0", 422, "page"),
        ("page=abc", 422, "page"),
        ("area_id=abc", 422, "area_id"),
        ("area_id=-3", 422, "area_id"),
        ("area_id=999999", 404, None),
        ("area_id=99999999999999999999", 422, "area_id"),
    ],
)
def test_bad_input_is_422_or_404_never_500(world, client, query, status, field):
    headers = bearer(world.member_a)
    sep = "&" if "area_id" not in query else ""
    url = f"/api/v1/rankings?{query}" + (f"{sep}area_id={world.community_a.id}" if sep else "")
    resp = client.get(url, headers=headers)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    if field:
        assert field in resp.get_json()["errors"]
    for path in ("/api/v1/rankings/teams", "/api/v1/rankings/communities"):
        resp = client.get(
            f"{path}?{query}&area_id={world.community_a.id}"
            if "area_id" not in query
            else f"{path}?{query}",
            headers=bearer(world.secretary_a),
        )
        assert resp.status_code in (404, 422), (path, resp.status_code)


def test_a_ranking_request_never_reads_the_ledger(ranked, client):
    w = ranked
    headers = bearer(w.member_a3)
    seen: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        for url in (
            f"/api/v1/rankings?area_id={w.district.id}&period=2026-11&per_page=2",
            f"/api/v1/rankings?area_id={w.district.id}&period=all&page=2&per_page=2",
        ):
            seen.clear()
            resp = client.get(url, headers=headers)
            assert resp.status_code == 200
            ranking_sql = [s for s in seen if "ranking_" in s]
            assert ranking_sql, "the request read no rollups"
            assert not [s for s in seen if re.search(r"\bledger_entries\b", s)], seen
            assert not [s for s in seen if re.search(r"\bledger_transactions\b", s)], seen
            assert len(seen) <= 15, seen
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


@pytest.fixture
def teams(world, clock):
    """Two projects in A (one with a team of two) and one in B, with settled earns."""
    w = world
    clock.set(None)
    haircut = make_project(w.member_a, w.community_a, status="approved", team=[w.member_a2])
    repair = make_project(w.member_a3, w.community_a, status="approved", title="家电维修")
    errands = make_project(w.member_b, w.community_b, status="approved", title="代购")
    d1 = make_delivery(haircut, w.member_a, participants=[(w.member_a, 2), (w.member_a2, 2)])
    d2 = make_delivery(repair, w.member_a3, participants=[(w.member_a3, 1)])
    d3 = make_delivery(errands, w.member_b, participants=[(w.member_b, 3)], length_hours=3)
    earn(w.member_a, w.community_a, 24, delivery_id=d1.delivery.id)
    earn(w.member_a2, w.community_a, 20, delivery_id=d1.delivery.id)
    earn(w.member_a3, w.community_a, 12, minutes=60, delivery_id=d2.delivery.id)
    earn(w.member_b, w.community_b, 36, minutes=180, delivery_id=d3.delivery.id)
    return haircut, repair, errands


def test_team_rankings_for_officers_and_secretaries(world, client, teams):
    w = world
    haircut, repair, errands = teams
    body = client.get(
        f"/api/v1/rankings/teams?area_id={w.street.id}", headers=bearer(w.officer_street)
    ).get_json()
    assert [(i["rank"], i["project_id"], i["points"], i["hours"]) for i in body["items"]] == [
        (1, haircut.id, 44, 4.0),
        (2, errands.id, 36, 3.0),
        (3, repair.id, 12, 1.0),
    ]
    assert body["total"] == 3 and body["items"][0]["title"] == "义务理发"
    mine = client.get(
        f"/api/v1/rankings/teams?area_id={w.community_a.id}", headers=bearer(w.secretary_a)
    ).get_json()
    assert [i["project_id"] for i in mine["items"]] == [haircut.id, repair.id]


def test_community_table(world, client, teams):
    w = world
    body = client.get(
        f"/api/v1/rankings/communities?area_id={w.street.id}", headers=bearer(w.officer_district)
    ).get_json()
    rows = {r["community_id"]: r for r in body["items"]}
    assert set(rows) == {w.community_a.id, w.community_b.id}
    a = rows[w.community_a.id]
    assert (a["members"], a["active_members"], a["points"], a["hours"]) == (3, 3, 56, 5.0)
    assert a["participation_rate"] == 1.0
    assert a["points_per_active_member"] == round(56 / 3, 1)
    b = rows[w.community_b.id]
    assert (b["members"], b["active_members"], b["points"], b["hours_per_active_member"]) == (
        1,
        1,
        36,
        3.0,
    )
    assert body["items"][0]["community_id"] == w.community_a.id  # most points first
    month = client.get(
        f"/api/v1/rankings/communities?area_id={w.street.id}&period=2020-01",
        headers=bearer(w.officer_street),
    ).get_json()
    assert all(r["active_members"] == 0 and r["participation_rate"] == 0 for r in month["items"])
    grid = client.get(
        f"/api/v1/rankings/communities?area_id={w.areas['grid_a1'].id}",
        headers=bearer(w.secretary_a),
    )
    assert grid.status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/rankings/teams", "/api/v1/rankings/communities"])
@pytest.mark.parametrize(
    ("who", "area"),
    [
        ("member_a", "community_a"),
        ("resident_a", "community_a"),
        ("grid_a1", "community_a"),
        ("secretary_b", "community_a"),  # another community
        ("secretary_a", "street"),  # above their community
        ("officer_other", "street"),  # another street
        ("officer_other", "district"),
    ],
)
def test_wrong_role_or_community_is_403(world, client, path, who, area):
    user = world.users[who]
    target = world.areas[area]
    resp = client.get(f"{path}?area_id={target.id}", headers=bearer(user))
    assert resp.status_code == 403


def test_set_exposure_over_http(world, client, ranked):
    w = ranked
    url = f"/api/v1/rankings/settings/{w.community_a.id}"
    resp = client.put(url, json={"exposure": "top_n", "top_n": 1}, headers=bearer(w.secretary_a))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["exposure"] == "top_n"
    body = client.get(
        f"/api/v1/rankings?area_id={w.community_a.id}", headers=bearer(w.member_a3)
    ).get_json()
    assert [i["display_name"] for i in body["items"]] == ["member_a"]
    assert body["me"]["rank"] == 2
    assert (
        client.put(
            url, json={"exposure": "top_n", "top_n": 1}, headers=bearer(w.member_a)
        ).status_code
        == 403
    )
    assert (
        client.put(url, json={"exposure": "loud"}, headers=bearer(w.secretary_a)).status_code == 422
    )
    assert (
        client.put(url, json={"exposure": "top_n"}, headers=bearer(w.secretary_a)).status_code
        == 422
    )
    assert (
        client.put(
            "/api/v1/rankings/settings/999999", json={"exposure": "full"}, headers=bearer(w.admin)
        ).status_code
        == 404
    )


def test_grid_member_in_the_api(world, client, clock):
    grid = world.areas["grid_a1"]
    member = make_user("member_g", (Role.MEMBER, grid))
    earn(member, world.community_a, 9)
    body = client.get(f"/api/v1/rankings?area_id={grid.id}", headers=bearer(member)).get_json()
    assert body["me"]["rank"] == 1 and body["total"] == 1
