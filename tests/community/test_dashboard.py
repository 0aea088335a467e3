"""Community dashboard: each figure from real rows (points and hours settled per month,
needs per grid, menu projects nobody ordered, members and participation), bounded by
the period; who may read it (secretary, officers over it); bad periods are 4xx; the page
draws SVG charts without script and gives the same numbers as tables."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Need, NeedStatus, Settlement, utcnow
from volunteer_market.models.projects import ProjectMode
from volunteer_market.services import needs as need_service
from volunteer_market.zones import DEFAULT_ZONE

from ..conftest import login
from ..factories import make_need, make_project, rate_delivery


def path(community) -> str:
    return f"/api/v1/dashboards/communities/{community.id}"


def this_month() -> str:
    return utcnow().astimezone(DEFAULT_ZONE).strftime("%Y-%m")


@pytest.fixture
def figures(scene):
    """A settled 2 h delivery (24 points each for member_a and member_a2) this month,
    one settled last year; needs in grids A1 and A2; two menu projects, one ordered."""
    w = scene.world
    rate_delivery(w.resident_a, scene.delivery, 5)
    rate_delivery(w.resident_a2, scene.delivery, 4)
    old = scene.record(hours_ago=50)
    rate_delivery(w.resident_a, old, 5)
    rate_delivery(w.resident_a2, old, 5)
    year = utcnow().astimezone(DEFAULT_ZONE).year
    with atomic():
        db.session.execute(
            sa.update(Settlement)
            .where(Settlement.delivery_id == old.id)
            .values(settled_at=datetime(year - 1, 12, 31, 23, 0, tzinfo=DEFAULT_ZONE))
        )
    n1 = make_need(w.resident_a, w.community_a)
    n2 = make_need(w.resident_a, w.community_a, title="修水管")
    n3 = make_need(w.resident_a2, w.community_a, title="陪同就医")
    with atomic():
        db.session.execute(sa.update(Need).where(Need.id == n2.id).values(status=NeedStatus.CLOSED))
        db.session.execute(
            sa.update(Need).where(Need.id == n3.id).values(status=NeedStatus.CANCELLED)
        )
    menu = [
        make_project(w.member_a, w.community_a, status="approved", mode=ProjectMode.MENU, title=t)
        for t in ("上门理发", "家电维修")
    ]
    with atomic():
        need_service.order_menu(w.resident_a, db.session.merge(menu[0]))
    return {"scene": scene, "needs": (n1, n2, n3), "menu": menu, "year": year}


def test_the_figures(api, figures):
    w = figures["scene"].world
    resp = api.get("secretary_a", path(w.community_a))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["period"] == str(figures["year"]) and len(body["months"]) == 12
    by_month = {r["month"]: r["points"] for r in body["points_by_month"]}
    assert by_month[this_month()] == 48 and sum(by_month.values()) == 48  # last year's: out
    hours = {r["month"]: r["hours"] for r in body["hours_by_month"]}
    assert hours[this_month()] == 4.0 and sum(hours.values()) == 4.0
    grids = {r["grid_id"]: (r["open"], r["served"]) for r in body["needs_by_grid"]}
    assert grids[w.areas["grid_a1"].id] == (2, 1)  # n1 open, the menu order dispatched; n2
    assert grids[w.areas["grid_a2"].id] == (0, 0)  # n3 cancelled
    assert [p["title"] for p in body["unordered_menu_projects"]] == ["家电维修"]
    assert body["members"] == 3 and body["active_members"] == 2
    assert body["participation_rate"] == round(2 / 3, 4)


def test_the_period_bounds_every_figure(api, figures):
    w = figures["scene"].world
    last = str(figures["year"] - 1)
    body = api.get("secretary_a", path(w.community_a), period=last).get_json()
    assert {r["month"]: r["points"] for r in body["points_by_month"]}[f"{last}-12"] == 48
    assert body["active_members"] == 2
    assert all(r["open"] == r["served"] == 0 for r in body["needs_by_grid"])
    assert {p["title"] for p in body["unordered_menu_projects"]} == {"上门理发", "家电维修"}
    month = api.get("secretary_a", path(w.community_a), period=this_month()).get_json()
    assert month["months"] == [this_month()] and month["points_by_month"][0]["points"] == 48
    quarter = f"{figures['year']}-Q{(int(this_month()[5:]) - 1) // 3 + 1}"
    assert (
        len(api.get("secretary_a", path(w.community_a), period=quarter).get_json()["months"]) == 3
    )


@pytest.mark.parametrize("who", ["secretary_a", "officer_street", "officer_district"])
def test_who_reads_it(api, figures, who):
    w = figures["scene"].world
    assert api.get(who, path(w.community_a)).status_code == 200


@pytest.mark.parametrize(
    "who,status",
    [
        ("member_a", 403),
        ("resident_a", 403),
        ("grid_a1", 403),
        ("admin", 403),
        ("secretary_b", 404),
        ("officer_other", 404),
        ("member_b", 404),
    ],
)
def test_who_does_not(api, figures, who, status):
    w = figures["scene"].world
    assert api.get(who, path(w.community_a)).status_code == status


def test_not_a_community(api, world):
    assert api.get("admin", f"/api/v1/dashboards/communities/{world.street.id}").status_code == 404
    assert api.get("admin", "/api/v1/dashboards/communities/999999").status_code == 404


@pytest.mark.parametrize(
    "period",
    ["all", "2026-13", "2026-Q5", "abc", "0999", "9999", "9999-12", "1999", "20261", "2026-11-01"],
)
def test_bad_periods_are_422(api, world, period):
    resp = api.get("secretary_a", path(world.community_a), period=period)
    assert resp.status_code == 422 and resp.get_json()["errors"]


# --- the page ---------------------------------------------------------------------------


def test_page_draws_charts_and_tables_without_script(client, figures):
    w = figures["scene"].world
    login(client, "secretary_a")
    resp = client.get(f"/communities/{w.community_a.id}/dashboard")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.count("<svg") == 3 and "<script" not in html
    assert (
        "<table" in html and f'<th scope="row">{this_month()}</th><td>48</td><td>4.0</td>' in html
    )
    assert "家电维修" in html and "上门理发" not in html
    assert "67%" in html


def test_page_choose_redirects_and_refuses(client, world):
    login(client, "secretary_a")
    resp = client.get("/dashboard")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(
        f"/communities/{world.community_a.id}/dashboard"
    )


@pytest.mark.parametrize("who,status", [("member_a", 403), ("secretary_b", 404)])
def test_page_refuses_others(client, world, who, status):
    login(client, who)
    assert client.get(f"/communities/{world.community_a.id}/dashboard").status_code == status
    if who == "member_a":
        assert client.get("/dashboard").status_code == 403


def test_page_bad_period_is_400_with_a_message(client, world):
    login(client, "secretary_a")
    resp = client.get(f"/communities/{world.community_a.id}/dashboard?period=2026-13")
    assert resp.status_code == 400 and "请填写年（2026）" in resp.get_data(as_text=True)
