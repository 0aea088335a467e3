"""The community settings page: the policy in force and its difference from the version
before, a new version from the form (PRG), bad input shown in the page's language with
nothing changed, the exposure form returning here; who may see and change what."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import PointsPolicy, RankingSettings
from volunteer_market.services import points_policy

from ..conftest import csrf_token, login


def page(community) -> str:
    return f"/communities/{community.id}/settings"


def form(**over) -> dict:
    data = {
        "base_rate": "10",
        "hours_cap": "8",
        "unrated_multiplier_percent": "100",
        "rating_window_days": "7",
        "redemption_hold_days": "14",
        "expiry": "none",
        "mult_min_0": "4.5",
        "mult_factor_0": "1.2",
        "mult_min_1": "3.5",
        "mult_factor_1": "1",
        "mult_min_2": "2.5",
        "mult_factor_2": "0.5",
    }
    data.update(over)
    return data


def post(client, community, **over):
    token = csrf_token(client, page(community))
    return client.post(
        f"{page(community)}/points-policy", data={**form(**over), "csrf_token": token}
    )


def own_versions(community) -> list[PointsPolicy]:
    return list(
        db.session.scalars(
            sa.select(PointsPolicy)
            .where(PointsPolicy.community_id == community.id)
            .order_by(PointsPolicy.version)
        )
    )


def test_secretary_saves_a_new_version_and_sees_the_difference(client, world):
    login(client, "secretary_a")
    html = client.get(page(world.community_a)).get_data(as_text=True)
    assert "默认积分规则" in html and 'name="base_rate"' in html
    resp = post(client, world.community_a, base_rate="15", expiry="end_of_next_year")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(page(world.community_a))
    versions = own_versions(world.community_a)
    assert [(v.version, v.base_rate, v.expiry_rule.value) for v in versions] == [
        (1, 15, "end_of_next_year")
    ]
    html = client.get(page(world.community_a)).get_data(as_text=True)
    assert "已生成积分规则第 1 版" in html and "现行第 1 版" in html
    assert "与上一版（默认规则第 1 版）相比" in html
    assert "10 → <strong>15</strong>" in html and "次年年底过期</strong>" in html


def test_an_unchanged_form_makes_no_version(client, world):
    login(client, "secretary_a")
    resp = post(client, world.community_a)
    assert resp.status_code == 302
    assert own_versions(world.community_a) == []


def test_officer_over_it_saves_and_members_only_read(client, world):
    login(client, "officer_street")
    assert post(client, world.community_a, hours_cap="4").status_code == 302
    assert own_versions(world.community_a)[0].hours_cap_minutes == 240
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "member_a")
    html = client.get(page(world.community_a)).get_data(as_text=True)
    assert "现行第 1 版" in html and "4 小时" in html and 'name="base_rate"' not in html
    token = csrf_token(client, "/")
    resp = client.post(
        f"{page(world.community_a)}/points-policy", data={**form(), "csrf_token": token}
    )
    assert resp.status_code == 403
    assert len(own_versions(world.community_a)) == 1


@pytest.mark.parametrize("who", ["secretary_b", "officer_other", "member_b", "resident_b"])
def test_other_communities_get_404(client, world, who):
    login(client, who)
    assert client.get(page(world.community_a)).status_code == 404
    token = csrf_token(client, "/")
    resp = client.post(
        f"{page(world.community_a)}/points-policy",
        data={**form(base_rate="99"), "csrf_token": token},
    )
    assert resp.status_code == 404
    assert own_versions(world.community_a) == []


@pytest.mark.parametrize(
    "over,message",
    [
        ({"base_rate": "-5"}, "取值范围"),
        ({"base_rate": "abc"}, "请输入整数"),
        ({"hours_cap": "-1"}, "取值范围"),
        ({"rating_window_days": "0"}, "取值范围"),
        ({"mult_min_0": "3", "mult_factor_0": "1", "mult_min_1": "4.5"}, "从高到低"),
        ({"mult_min_0": "9"}, "取值范围"),
        ({"mult_factor_1": ""}, "请输入数字"),
        ({"expiry": "sometimes"}, "请从选项中选择"),
    ],
)
def test_bad_input_is_shown_and_changes_nothing(client, world, over, message):
    login(client, "secretary_a")
    resp = post(client, world.community_a, **over)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert 'class="field-errors"' in html and message in html
    assert own_versions(world.community_a) == []


def test_bad_input_in_english(client, world):
    login(client, "secretary_a")
    client.get("/?lang=en")
    html = post(client, world.community_a, base_rate="-5").get_data(as_text=True)
    assert "Must be between 0 and 1000." in html and "Points rule" in html
    assert "取值范围" not in html and "积分规则" not in html


def test_exposure_form_returns_to_the_settings(client, world):
    login(client, "secretary_a")
    token = csrf_token(client, page(world.community_a))
    resp = client.post(
        f"/rankings/settings/{world.community_a.id}",
        data={"exposure": "top_n", "top_n": "3", "back": "settings", "csrf_token": token},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith(page(world.community_a))
    assert db.session.get(RankingSettings, world.community_a.id).top_n == 3
    assert "只公开前 3 名" in client.get(page(world.community_a)).get_data(as_text=True)


def test_choose_redirects_to_my_only_community_and_refuses_members(client, world):
    login(client, "secretary_a")
    resp = client.get("/settings")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(page(world.community_a))
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "officer_street")
    html = client.get("/settings").get_data(as_text=True)
    assert world.community_a.name in html and world.community_b.name in html
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "member_a")
    assert client.get("/settings").status_code == 403


def test_the_page_shows_the_previous_own_version(client, world):
    with atomic():
        points_policy.new_policy_version(None, world.community_a, base_rate=12)
    with atomic():
        points_policy.new_policy_version(None, world.community_a, rating_window_days=10)
    login(client, "secretary_a")
    html = client.get(page(world.community_a)).get_data(as_text=True)
    assert "与上一版（第 1 版）相比" in html and "7 → <strong>10</strong>" in html
