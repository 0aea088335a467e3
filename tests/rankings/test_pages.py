"""Leaderboard pages: pickers, my position highlighted, rules text, my chart, the team
and community tables, the exposure form (CSRF, permissions)."""

from __future__ import annotations

import re

from flask import g

from volunteer_market.database import atomic
from volunteer_market.models.rankings import Exposure
from volunteer_market.services import rankings

from ..conftest import login, post_form
from .conftest import earn, local


def _login(client, username: str) -> None:
    """Sign in, then drop the CSRF token Flask-WTF caches in ``g``: the test's app
    context outlives requests, and the login cleared the session copy of it."""
    login(client, username)
    g.pop("csrf_token", None)


def _ranked(w, clock):
    clock.set(local("2026-11-02 09:00"))
    earn(w.member_a, w.community_a, 30)
    earn(w.member_a2, w.community_a, 20)
    earn(w.member_a3, w.community_a, 20)
    clock.set(None)


def test_leaderboard_page(world, client, clock):
    w = world
    _ranked(w, clock)
    login(client, "member_a2")
    resp = client.get(f"/rankings?area_id={w.community_a.id}&period=2026-11")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "排行榜" in html and "member_a3" in html
    assert re.search(
        r'<li class="me">\s*<span class="rank">2</span>\s*<span class="who">member_a2', html
    )
    assert 'name="area_id"' in html and 'name="period"' in html
    assert 'value="2026-11" selected' in html
    assert "先达到该积分的排在前面" in html  # the tie rule is explained
    assert "兑换奖品和积分过期不会降低排名" in html
    assert "<svg" in html and "近 12 个月我的积分" in html
    assert "<script" not in html and "style=" not in html
    assert "展示方式设置" not in html  # members cannot configure
    default = client.get("/rankings").get_data(as_text=True)
    assert w.community_a.name in default
    assert client.get("/rankings?period=2026-13").status_code == 400
    assert client.get("/rankings?area_id=999999").status_code == 404


def test_leaderboard_ignores_impossible_numbers(world, client):
    """An area id or page that is no ASCII number (or beyond any id) opens the default
    area's first page; a real id of no area is 404."""
    login(client, "member_a")
    for query in ("area_id=²", f"area_id={10**20}", "page=²", "page=-3", f"page={10**20}"):
        resp = client.get(f"/rankings?{query}")
        assert resp.status_code == 200, query
        assert world.community_a.name in resp.get_data(as_text=True)
    assert client.get("/rankings/teams?area_id=²").status_code == 403  # the default area


def test_leaderboard_in_tiers_mode(world, client, clock):
    w = world
    _ranked(w, clock)
    with atomic():
        rankings.set_exposure(None, w.community_a, "tiers")
    login(client, "resident_a")
    html = client.get(f"/rankings?area_id={w.community_a.id}").get_data(as_text=True)
    assert "金牌" in html and "不公开具体名次" in html
    assert "30 分" not in html


def test_secretary_sets_exposure_through_the_form(world, client, clock):
    w = world
    _ranked(w, clock)
    _login(client, "secretary_a")
    page = f"/rankings?area_id={w.community_a.id}"
    html = client.get(page).get_data(as_text=True)
    assert "展示方式设置" in html and "团队排名" in html and "社区统计" in html
    resp = post_form(
        client,
        f"/rankings/settings/{w.community_a.id}",
        {
            "exposure": "top_n",
            "top_n": "1",
            "gold_pct": "10",
            "silver_pct": "30",
            "bronze_pct": "60",
        },
        token_from=page,
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    assert rankings.exposure_for(w.community_a).top_n == 1
    bad = post_form(
        client,
        f"/rankings/settings/{w.community_a.id}",
        {"exposure": "top_n", "top_n": "0"},
        token_from=page,
    )
    assert bad.status_code == 302
    assert rankings.exposure_for(w.community_a).top_n == 1
    no_csrf = client.post(f"/rankings/settings/{w.community_a.id}", data={"exposure": "full"})
    assert no_csrf.status_code == 400
    forbidden = post_form(
        client, f"/rankings/settings/{w.street.id}", {"exposure": "full"}, token_from=page
    )
    assert forbidden.status_code == 403


def test_team_and_community_pages(world, client, clock):
    w = world
    _ranked(w, clock)
    login(client, "officer_street")
    teams = client.get(f"/rankings/teams?area_id={w.street.id}")
    assert teams.status_code == 200 and "团队排名" in teams.get_data(as_text=True)
    table = client.get(f"/rankings/communities?area_id={w.street.id}")
    html = table.get_data(as_text=True)
    assert table.status_code == 200 and w.community_a.name in html and "参与率" in html


def test_team_and_community_pages_are_for_staff(world, client):
    w = world
    login(client, "member_a")
    assert client.get(f"/rankings/teams?area_id={w.street.id}").status_code == 403
    assert client.get(f"/rankings/communities?area_id={w.community_a.id}").status_code == 403


def test_admin_opens_on_the_first_district(world, client):
    login(client, "admin")
    html = client.get("/rankings").get_data(as_text=True)
    assert world.district.name in html and world.street2.name in html


def test_settings_errors_are_shown_in_chinese_and_change_nothing(world, client, clock):
    """Bad exposure input is answered with the form's translated messages (not
    marshmallow's or the service's English) and leaves the setting as it was."""
    w = world
    _ranked(w, clock)
    _login(client, "secretary_a")
    page = f"/rankings?area_id={w.community_a.id}"
    cases = [
        ({"exposure": "top_n", "top_n": "0"}, "前 N 名：取值范围：1 ~ 1000。"),
        ({"exposure": "everyone"}, "展示方式：请从选项中选择。"),
        (
            {"exposure": "tiers", "gold_pct": "50", "silver_pct": "30", "bronze_pct": "60"},
            "档位比例：须满足 0 &lt; 金牌 &lt; 银牌 &lt; 铜牌 ≤ 100。",
        ),
        ({"exposure": "full", "gold_pct": "abc"}, "金牌比例：请输入整数。"),
    ]
    for form, shown in cases:
        resp = post_form(client, f"/rankings/settings/{w.community_a.id}", form, token_from=page)
        assert resp.status_code == 302
        html = client.get(resp.headers["Location"]).get_data(as_text=True)
        assert shown in html, (form, html[html.find("flash") - 200 : html.find("flash") + 400])
        assert "Must be" not in html and "Tier percentiles" not in html
        assert rankings.exposure_for(w.community_a).mode == Exposure.FULL
