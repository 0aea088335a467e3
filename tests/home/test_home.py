"""Each person's home (工作台): per role, what is shown (the counts and lists of
``services/home.py``, with links to where the work is done), and that another
community's objects are never counted or listed."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from volunteer_market.database import atomic
from volunteer_market.extensions import db
from volunteer_market.models import Delivery, Need, NeedStatus, Role, utcnow
from volunteer_market.models.projects import ProjectMode
from volunteer_market.services import home as home_service
from volunteer_market.services import registrations

from ..conftest import login, post_form
from ..factories import give_points, make_need, make_project, make_reward, make_user, redeem
from .conftest import home_page, part_of


def _register(community, phone: str) -> None:
    with atomic():
        registrations.register(
            phone=phone,
            display_name="新党员",
            password="password123",
            community=community,
            role=Role.MEMBER,
        )


def test_secretary_sees_his_communitys_work_and_nobody_elses(client, scene):
    w = scene.world
    make_project(w.member_a, w.community_a, status="submitted", title="待审A")
    make_project(w.member_b, w.community_b, status="submitted", title="待审B")
    make_project(w.member_b, w.community_b, status="submitted", title="待审B2")
    scene.record_closed()  # a second delivery in A, its window closed: due
    give_points(w.member_a, 50)
    give_points(w.member_b, 50)
    redeem(w.member_a, make_reward(w.community_a))
    redeem(w.member_b, make_reward(w.community_b))
    _register(w.community_a, "13500000001")
    _register(w.community_b, "13500000002")
    _register(w.community_b, "13500000003")
    make_need(w.resident_a, w.community_a)
    make_need(w.resident_b, w.community_b)
    make_need(w.resident_b, w.community_b, title="修水管")

    login(client, "secretary_a")
    html, counts = home_page(client)
    assert counts["secretary.reviews"] == 1
    assert counts["secretary.settlements"] == 2
    assert counts["secretary.redemptions"] == 1
    assert counts["secretary.registrations"] == 1
    assert counts["secretary.needs"] == 1
    assert counts["secretary.appeals"] == 0 and counts["secretary.objections"] == 0
    assert counts["secretary.reports"] == 0
    part = part_of(html, "secretary")
    assert 'href="/review"' in part and 'href="/settlement"' in part
    assert 'href="/rewards/fulfil"' in part and 'href="/registrations"' in part
    assert "其中 1 条评价期已结束" in part
    # the dashboard summary of his community, and only his
    assert f'href="/communities/{w.community_a.id}/dashboard"' in html
    assert f"/communities/{w.community_b.id}/dashboard" not in html
    assert "社区看板：龙湖东岸社区" in html and "七里一村社区" not in html
    # a secretary has no points tiles nor a member's part
    assert 'id="home-member"' not in html and "可用积分" not in html

    post_form(client, "/logout", {})
    login(client, "secretary_b")
    _html, counts_b = home_page(client)
    assert counts_b["secretary.reviews"] == 2
    assert counts_b["secretary.settlements"] == 0
    assert counts_b["secretary.redemptions"] == 1
    assert counts_b["secretary.registrations"] == 2
    assert counts_b["secretary.needs"] == 2


def test_member_sees_his_projects_open_needs_and_points(client, scene):
    w = scene.world
    make_project(w.member_b, w.community_b, status="approved", title="别人的项目")
    make_need(w.resident_a, w.community_a, title="代买菜")
    make_need(w.resident_b, w.community_b, title="七里一村的需求")
    served = make_need(w.resident_a, w.community_a, title="已完成的需求")
    with atomic():
        db.session.execute(
            sa.update(Need).where(Need.id == served.id).values(status=NeedStatus.CLOSED)
        )
    give_points(w.member_a, 30, reason="补记")

    login(client, "member_a2")  # on member_a's team
    html, counts = home_page(client)
    part = part_of(html, "member")
    assert counts["member.projects"] == 1
    assert f'href="/projects/{scene.project.id}"' in part and "别人的项目" not in part
    assert counts["member.needs"] == 1
    assert "代买菜" in part and "七里一村的需求" not in part and "已完成的需求" not in part
    assert 'id="home-secretary"' not in html and 'id="home-resident"' not in html

    post_form(client, "/logout", {})
    login(client, "member_a")
    html, _counts = home_page(client)
    part = part_of(html, "member")
    assert '<span class="num">30</span>' in part  # available
    assert "书记调整" in part and "+30" in part  # the recent posting, labelled


def test_resident_sees_what_to_rate_first_then_needs_and_menu(client, scene):
    w = scene.world
    make_project(
        w.member_a, w.community_a, status="approved", mode=ProjectMode.MENU, title="上门理发"
    )
    make_project(
        w.member_b, w.community_b, status="approved", mode=ProjectMode.MENU, title="七里理发"
    )
    make_need(w.resident_a, w.community_a, title="修水管")
    make_need(w.resident_a2, w.community_a, title="邻居的需求")

    login(client, "resident_a")
    html, _counts = home_page(client)
    part = part_of(html, "resident")
    rate_link = f'href="/deliveries/{scene.delivery.id}/ratings"'
    assert rate_link in part
    assert html.index(rate_link) < html.index("我的需求") < html.index("服务菜单")
    assert "修水管" in part and "邻居的需求" not in part
    assert "上门理发" in part and "七里理发" not in part
    assert 'href="/rate"' in part  # the code page, for a slip
    assert "可用积分" not in html  # no points tiles for a resident

    post_form(client, "/logout", {})
    login(client, "resident_b")
    html, _counts = home_page(client)
    part = part_of(html, "resident")
    assert rate_link not in html and "暂时没有要评价的服务。" in part
    assert "七里理发" in part and "上门理发" not in part


def test_grid_worker_sees_his_residents_and_the_ratings_he_may_enter(client, scene):
    w = scene.world
    make_need(w.resident_a, w.community_a)
    make_need(w.resident_a2, w.community_a, title="第二网格的需求")  # grid A2: not his

    login(client, "grid_a1")
    html, counts = home_page(client)
    assert counts["grid.residents"] == 1  # resident_a
    assert counts["grid.needs"] == 1
    assert counts["grid.proxy"] == 1  # resident_a has not rated scene.delivery
    assert f'href="/deliveries/{scene.delivery.id}/ratings"' in part_of(html, "grid")

    post_form(client, "/logout", {})
    login(client, "grid_b1")
    html, counts = home_page(client)
    assert counts["grid.residents"] == 1 and counts["grid.needs"] == 0
    assert counts["grid.proxy"] == 0
    assert f"/deliveries/{scene.delivery.id}/ratings" not in html


def test_proxy_count_drops_once_rated_or_closed(client, scene):
    from ..factories import rate_delivery

    w = scene.world
    rate_delivery(w.resident_a, scene.delivery, 5)
    other = scene.record(hours_ago=10)
    with atomic():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id == other.id)
            .values(rating_deadline=utcnow() - timedelta(minutes=1))
        )
    login(client, "grid_a1")
    _html, counts = home_page(client)
    assert counts["grid.proxy"] == 0


def test_officer_sees_his_subtree_only(client, world):
    login(client, "officer_street")
    html, counts = home_page(client)
    assert counts["officer.communities"] == 2  # A and B, not C (another street)
    assert counts["officer.appeals"] == 0
    assert 'id="home-secretary"' not in html and 'id="home-member"' not in html
    post_form(client, "/logout", {})
    login(client, "officer_other")
    _html, counts = home_page(client)
    assert counts["officer.communities"] == 1
    post_form(client, "/logout", {})
    login(client, "officer_district")
    _html, counts = home_page(client)
    assert counts["officer.communities"] == 3


def test_admin_sees_the_systems_figures(client, world):
    login(client, "admin")
    html, counts = home_page(client)
    assert counts["admin.communities"] == 3
    assert counts["admin.users"] >= len(world.users)
    assert 'href="/admin/users"' in part_of(html, "admin")
    for part in ("secretary", "officer", "grid", "member", "resident"):
        assert f'id="home-{part}"' not in html


def test_several_roles_see_each_part(client, scene):
    w = scene.world
    make_user("both_a", (Role.MEMBER, w.community_a), (Role.RESIDENT, w.areas["grid_a1"]))
    login(client, "both_a")
    html, counts = home_page(client)
    assert 'id="home-member"' in html and 'id="home-resident"' in html
    assert html.index('id="home-resident"') < html.index('id="home-member"')
    assert "member.projects" in counts


def test_the_parts_follow_the_policy(world):
    def parts(user) -> list[str]:
        return list(home_service.home(user))

    assert parts(world.secretary_a) == ["secretary"]
    assert parts(world.officer_street) == ["officer"]
    assert parts(world.grid_a1) == ["grid"]
    assert parts(world.member_a) == ["member"]
    assert parts(world.resident_a) == ["resident"]
    assert parts(world.admin) == ["admin"]
    nobody = make_user("nobody")
    assert parts(nobody) == []


def test_anonymous_is_sent_to_login(client, world):
    resp = client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_home_is_get_only(client, world):
    login(client, "secretary_a")
    assert client.post("/", data={}).status_code in (400, 405)
