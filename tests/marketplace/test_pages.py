"""Marketplace pages: every form and page with the right user, wrong users, bad input."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from volunteer_market.extensions import db
from volunteer_market.models import (
    Delivery,
    Need,
    NeedStatus,
    Notification,
    Project,
    ProjectMode,
    ProjectStatus,
    TeamMembership,
    TeamStatus,
)

from ..conftest import csrf_token, login
from ..factories import make_delivery, make_need, make_project
from .conftest import multipart, now


class FreshContextClient(FlaskClient):
    """A test client whose every request runs in its own app context.

    The ``app`` fixture keeps one app context open for the whole test, and a request
    reuses an open app context, so Flask-Login's per-request cache in ``g`` would leak
    one client's user into another client's requests.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def as_user(app, world):
    """Return a signed-in test client for a world user (one per user)."""
    clients = {}

    def get(name: str):
        if name not in clients:
            c = FreshContextClient(app, app.response_class, use_cookies=True)
            login(c, name)
            clients[name] = c
        return clients[name]

    return get


def fresh() -> None:
    """See what the requests committed: end the test session's snapshot, drop its cache."""
    db.session.rollback()
    db.session.expire_all()


def post(c, path: str, data: dict | None = None, **kw):
    return c.post(path, data={**(data or {}), "csrf_token": csrf_token(c, "/")}, **kw)


def assert_csp_clean(html: str) -> None:
    assert "<script" not in html
    assert " style=" not in html


def text(resp) -> str:
    return resp.get_data(as_text=True)


# --- marketplace and detail -------------------------------------------------------


def test_pages_need_a_login(client, world):
    for path in ("/projects", "/projects/new", "/needs", "/review", "/notifications"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_marketplace_lists_and_filters(as_user, world):
    make_project(world.member_a, world.community_a, status="approved", title="义务理发")
    make_project(
        world.member_a, world.community_a, status="approved", title="健康义诊", category="health"
    )
    make_project(world.member_a, world.community_a, status="draft", title="草稿项目")
    c = as_user("resident_a")
    html = text(c.get("/projects"))
    assert "义务理发" in html and "健康义诊" in html and "草稿项目" not in html
    assert_csp_clean(html)
    html = text(c.get("/projects?category=health"))
    assert "健康义诊" in html and "义务理发" not in html
    html = text(
        c.get(
            "/projects",
            query_string={
                "q": "义务",
                "status": "approved",
                "mode": "event",
                "community_id": world.community_a.id,
            },
        )
    )
    assert "义务理发" in html and "健康义诊" not in html
    assert c.get("/projects?category=nope&page=x").status_code == 200  # bad filters are ignored
    assert "草稿项目" in text(as_user("member_a").get("/projects/mine"))


def test_project_detail_visibility(as_user, world):
    draft = make_project(world.member_a, world.community_a)
    approved = make_project(world.member_a, world.community_a, status="approved", title="法律讲堂")
    assert as_user("member_a").get(f"/projects/{draft.id}").status_code == 200
    assert as_user("member_a2").get(f"/projects/{draft.id}").status_code == 404
    assert as_user("resident_b").get(f"/projects/{draft.id}").status_code == 404
    resp = as_user("resident_b").get(f"/projects/{approved.id}")
    assert resp.status_code == 200 and "法律讲堂" in text(resp)
    assert_csp_clean(text(resp))
    assert as_user("member_a").get("/projects/99999").status_code == 404


# --- propose and edit ------------------------------------------------------------


def form_of(world, **over):
    return {
        "community_id": str(world.community_a.id),
        "title": "义务理发",
        "description": "每月第一个周六。",
        "category": "elderly",
        "mode": "event",
        "capacity": "5",
        "planned_hours": "2",
        "starts_at": "2026-06-06T09:00",
        "ends_at": "2026-06-06T11:00",
        "skills": "理发，沟通",
        "target_groups": ["空巢老人", "残疾人"],
        "target_groups_other": "行动不便者",
        **over,
    }


def test_propose_form(as_user, world):
    c = as_user("member_a")
    page = c.get("/projects/new")
    assert page.status_code == 200 and 'name="csrf_token"' in text(page)
    assert_csp_clean(text(page))
    resp = post(c, "/projects/new", form_of(world, action="save"))
    assert resp.status_code == 302, text(resp)[:2000]
    project = db.session.scalars(sa.select(Project)).one()
    assert project.status == ProjectStatus.DRAFT and project.owner_id == world.member_a.id
    assert project.skills == ["理发", "沟通"]
    assert project.target_groups == ["空巢老人", "残疾人", "行动不便者"]
    assert project.starts_at.hour == 1  # 09:00 in Asia/Shanghai is 01:00 UTC
    assert resp.headers["Location"].endswith(f"/projects/{project.id}")


def test_propose_with_a_cover(as_user, world, app):
    c = as_user("member_a")
    token = csrf_token(c, "/projects/new")
    form = {k: v for k, v in form_of(world).items() if k != "target_groups"}
    resp = c.post(
        "/projects/new",
        **multipart(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, field="cover", csrf_token=token, **form),
    )
    assert resp.status_code == 302, text(resp)[:2000]
    project = db.session.scalars(sa.select(Project)).one()
    assert project.cover_path
    img = c.get(f"/projects/{project.id}/cover")
    assert img.status_code == 200 and img.mimetype == "image/png"
    img.close()
    assert as_user("member_a2").get(f"/projects/{project.id}/cover").status_code == 404


def test_propose_with_a_bad_cover_saves_nothing(as_user, world, unchanged):
    c = as_user("member_a")
    token = csrf_token(c, "/projects/new")
    form = {k: v for k, v in form_of(world).items() if k != "target_groups"}
    with unchanged():
        resp = c.post(
            "/projects/new", **multipart(b"GIF89a....", field="cover", csrf_token=token, **form)
        )
    assert resp.status_code == 422
    assert "仅支持 PNG、JPEG 或 WebP 图片" in text(resp)


@pytest.mark.parametrize(
    "over, message",
    [
        ({"title": ""}, "必填"),
        ({"capacity": "0"}, "取值范围"),
        ({"capacity": "abc"}, "请输入整数"),
        ({"planned_hours": ""}, "必填"),
        ({"ends_at": "2026-06-06T08:00"}, "结束时间必须晚于开始时间"),
        ({"category": "nope"}, "请从选项中选择"),
        ({"community_id": str(10**6)}, "请选择社区"),
    ],
)
def test_propose_form_errors(as_user, world, unchanged, over, message):
    c = as_user("member_a")
    with unchanged():
        resp = post(c, "/projects/new", form_of(world, **over))
    assert resp.status_code == 422
    assert message in text(resp)
    assert 'value="义务理发"' in text(resp) or over.get("title") == ""


def test_propose_shows_similar_projects(as_user, world, unchanged):
    make_project(world.member_a2, world.community_a, status="approved", title="义务理发服务")
    c = as_user("member_a")
    with unchanged():
        resp = post(c, "/projects/new", form_of(world, action="check"))
    assert resp.status_code == 200
    assert "本社区已有相似项目" in text(resp) and "义务理发服务" in text(resp)


@pytest.mark.parametrize("who, code", [("resident_a", 403), ("secretary_a", 403), ("grid_a1", 403)])
def test_propose_form_is_for_members(as_user, world, unchanged, who, code):
    c = as_user(who)
    assert c.get("/projects/new").status_code == code
    with unchanged():
        assert post(c, "/projects/new", form_of(world)).status_code == code


def test_propose_in_another_community_is_403(as_user, world, unchanged):
    with unchanged():
        resp = post(
            as_user("member_a"),
            "/projects/new",
            form_of(world, community_id=str(world.community_b.id)),
        )
    assert resp.status_code == 403


def test_propose_without_csrf_is_400(as_user, world, unchanged):
    with unchanged():
        resp = as_user("member_a").post("/projects/new", data=form_of(world))
    assert resp.status_code == 400


def test_edit_form(as_user, world, unchanged):
    project = make_project(world.member_a, world.community_a)
    c = as_user("member_a")
    page = c.get(f"/projects/{project.id}/edit")
    assert page.status_code == 200 and "义务理发" in text(page)
    data = form_of(world, title="义务理发进社区")
    del data["community_id"]
    assert post(c, f"/projects/{project.id}/edit", data).status_code == 302
    fresh()
    assert db.session.get(Project, project.id).title == "义务理发进社区"
    with unchanged():
        assert post(c, f"/projects/{project.id}/edit", {**data, "capacity": "0"}).status_code == 422
        assert post(as_user("member_a2"), f"/projects/{project.id}/edit", data).status_code == 404
        assert post(as_user("secretary_a"), f"/projects/{project.id}/edit", data).status_code == 403
    assert as_user("secretary_a").get(f"/projects/{project.id}/edit").status_code == 403


def test_edit_in_wrong_state_is_409(as_user, world, unchanged):
    project = make_project(world.member_a, world.community_a, status="approved")
    c = as_user("member_a")
    assert c.get(f"/projects/{project.id}/edit").status_code == 409
    data = form_of(world)
    del data["community_id"]
    with unchanged():
        assert post(c, f"/projects/{project.id}/edit", data).status_code == 409


# --- lifecycle and review ----------------------------------------------------------


def status_of(project) -> ProjectStatus:
    fresh()
    return db.session.get(Project, project.id).status


def test_submit_withdraw_cancel_complete_by_form(as_user, world, unchanged):
    project = make_project(world.member_a, world.community_a)
    c = as_user("member_a")
    with unchanged():
        assert (
            post(
                as_user("secretary_a"), f"/projects/{project.id}/action", {"action": "submit"}
            ).status_code
            == 403
        )
        assert (
            post(
                as_user("member_a2"), f"/projects/{project.id}/action", {"action": "submit"}
            ).status_code
            == 404
        )
        assert post(c, f"/projects/{project.id}/action", {"action": "complete"}).status_code == 409
        assert post(c, f"/projects/{project.id}/action", {"action": "explode"}).status_code == 400
    assert post(c, f"/projects/{project.id}/action", {"action": "submit"}).status_code == 302
    assert status_of(project) == ProjectStatus.SUBMITTED
    assert post(c, f"/projects/{project.id}/action", {"action": "withdraw"}).status_code == 302
    assert status_of(project) == ProjectStatus.DRAFT
    resp = post(c, f"/projects/{project.id}/action", {"action": "cancel", "comment": "不办了"})
    assert resp.status_code == 302 and status_of(project) == ProjectStatus.CANCELLED
    approved = make_project(world.member_a, world.community_a, status="approved")
    assert (
        post(
            as_user("secretary_a"), f"/projects/{approved.id}/action", {"action": "complete"}
        ).status_code
        == 302
    )
    assert status_of(approved) == ProjectStatus.COMPLETED


def test_review_queue_and_decisions(as_user, world, unchanged):
    p1 = make_project(world.member_a, world.community_a, status="submitted", title="健康义诊")
    p2 = make_project(world.member_a2, world.community_a, status="submitted", title="法律讲堂")
    p3 = make_project(world.member_a3, world.community_a, status="submitted", title="文化墙手绘")
    other = make_project(world.member_b, world.community_b, status="submitted", title="别的社区")
    sec = as_user("secretary_a")
    page = sec.get("/review")
    html = text(page)
    assert (
        page.status_code == 200
        and "健康义诊" in html
        and "法律讲堂" in html
        and "别的社区" not in html
    )
    assert_csp_clean(html)
    assert as_user("member_a").get("/review").status_code == 403
    assert as_user("resident_a").get("/review").status_code == 403
    # one tap approve
    resp = post(sec, f"/projects/{p1.id}/review", {"decision": "approve", "next": "queue"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/review")
    assert status_of(p1) == ProjectStatus.APPROVED
    # a reason is required to refuse
    with unchanged():
        resp = post(sec, f"/projects/{p2.id}/review", {"decision": "reject", "comment": " "})
    assert resp.status_code == 422 and "必须填写理由" in text(resp)
    assert (
        post(
            sec, f"/projects/{p2.id}/review", {"decision": "reject", "comment": "重复"}
        ).status_code
        == 302
    )
    assert status_of(p2) == ProjectStatus.REJECTED
    resp = post(
        sec, f"/projects/{p3.id}/review", {"decision": "request_changes", "comment": "请补充场地"}
    )
    assert resp.status_code == 302 and status_of(p3) == ProjectStatus.CHANGES_REQUESTED
    with unchanged():
        assert post(sec, f"/projects/{p1.id}/review", {"decision": "approve"}).status_code == 409
        assert post(sec, f"/projects/{other.id}/review", {"decision": "approve"}).status_code == 404
        assert (
            post(
                as_user("secretary_b"), f"/projects/{p3.id}/review", {"decision": "approve"}
            ).status_code
            == 404
        )
        assert (
            post(
                as_user("member_a2"), f"/projects/{p3.id}/review", {"decision": "approve"}
            ).status_code
            == 403
        )
        assert post(sec, f"/projects/{p3.id}/review", {"decision": "maybe"}).status_code == 422
    # the owner sees the reason on the project page
    html = text(as_user("member_a3").get(f"/projects/{p3.id}"))
    assert "请补充场地" in html


# --- teams and orders --------------------------------------------------------------


def test_team_pages(as_user, world, unchanged):
    project = make_project(world.member_a, world.community_a, status="approved", capacity=2)
    join = f"/projects/{project.id}/team/join"
    assert "申请加入团队" in text(as_user("member_a2").get(f"/projects/{project.id}"))
    assert post(as_user("member_a2"), join).status_code == 302
    assert post(as_user("member_a3"), join).status_code == 302
    with unchanged():
        assert post(as_user("member_a2"), join).status_code == 409
        assert post(as_user("resident_a"), join).status_code == 403
        assert post(as_user("member_b"), join).status_code == 403
        assert (
            post(
                as_user("member_a2"), f"/projects/{project.id}/team/{world.member_a3.id}/approve"
            ).status_code
            == 403
        )
        assert (
            post(
                as_user("member_a"), f"/projects/{project.id}/team/{world.member_a3.id}/promote"
            ).status_code
            == 404
        )
    owner_page = text(as_user("member_a").get(f"/projects/{project.id}"))
    assert "同意" in owner_page and "婉拒" in owner_page
    assert (
        post(
            as_user("member_a"), f"/projects/{project.id}/team/{world.member_a2.id}/approve"
        ).status_code
        == 302
    )
    with unchanged():  # capacity 2 = owner + one
        assert (
            post(
                as_user("member_a"), f"/projects/{project.id}/team/{world.member_a3.id}/approve"
            ).status_code
            == 409
        )
    assert (
        post(
            as_user("member_a"), f"/projects/{project.id}/team/{world.member_a3.id}/decline"
        ).status_code
        == 302
    )
    statuses = dict(
        db.session.execute(
            sa.select(TeamMembership.user_id, TeamMembership.status).where(
                TeamMembership.project_id == project.id
            )
        ).all()
    )
    assert statuses == {
        world.member_a2.id: TeamStatus.ACTIVE,
        world.member_a3.id: TeamStatus.DECLINED,
    }
    assert post(as_user("member_a2"), f"/projects/{project.id}/team/leave").status_code == 302


def test_order_page(as_user, world, unchanged):
    menu = make_project(world.member_a, world.community_a, status="approved", mode=ProjectMode.MENU)
    event = make_project(world.member_a, world.community_a, status="approved", title="健康义诊")
    assert "预约服务" in text(as_user("resident_a").get(f"/projects/{menu.id}"))
    assert "预约服务" not in text(as_user("member_a2").get(f"/projects/{menu.id}"))
    resp = post(as_user("resident_a"), f"/projects/{menu.id}/order", {"description": "周六上午"})
    assert resp.status_code == 302
    need = db.session.scalars(sa.select(Need)).one()
    assert (need.status, need.project_id) == (NeedStatus.DISPATCHED, menu.id)
    with unchanged():
        assert post(as_user("resident_a"), f"/projects/{event.id}/order").status_code == 409
        assert post(as_user("member_a2"), f"/projects/{menu.id}/order").status_code == 403
        assert post(as_user("resident_b"), f"/projects/{menu.id}/order").status_code == 403


# --- needs ------------------------------------------------------------------------


def test_needs_board_claim_and_release(as_user, world, unchanged):
    need = make_need(world.resident_a, world.community_a, title="代买药")
    html = text(as_user("member_a").get("/needs"))
    assert "代买药" in html and "抢单" in html
    assert_csp_clean(html)
    assert "代买药" not in text(as_user("resident_a2").get("/needs"))
    assert "代买药" not in text(as_user("member_b").get("/needs"))
    assert post(as_user("member_a"), f"/needs/{need.id}/claim").status_code == 302
    with unchanged():
        assert post(as_user("member_a2"), f"/needs/{need.id}/claim").status_code == 409
        assert post(as_user("resident_a"), f"/needs/{need.id}/claim").status_code == 403
        assert post(as_user("member_b"), f"/needs/{need.id}/claim").status_code == 404
        assert post(as_user("member_a2"), f"/needs/{need.id}/release").status_code == 403
        assert post(as_user("member_a"), f"/needs/{need.id}/explode").status_code == 404
    assert post(as_user("member_a"), f"/needs/{need.id}/release").status_code == 302
    fresh()
    assert db.session.get(Need, need.id).status == NeedStatus.OPEN


def test_needs_board_dispatch(as_user, world, unchanged):
    need = make_need(world.resident_a, world.community_a)
    project = make_project(world.member_a, world.community_a, status="approved", title="代办跑腿队")
    sec = as_user("secretary_a")
    html = text(sec.get("/needs"))
    assert "派单给" in html and "代办跑腿队" in html
    with unchanged():
        assert post(sec, f"/needs/{need.id}/dispatch", {"target": ""}).status_code == 422
        assert (
            post(
                sec, f"/needs/{need.id}/dispatch", {"target": f"member:{world.resident_a2.id}"}
            ).status_code
            == 422
        )
        assert (
            post(
                as_user("member_a"),
                f"/needs/{need.id}/dispatch",
                {"target": f"project:{project.id}"},
            ).status_code
            == 403
        )
        assert (
            post(
                as_user("secretary_b"),
                f"/needs/{need.id}/dispatch",
                {"target": f"project:{project.id}"},
            ).status_code
            == 404
        )
    assert (
        post(sec, f"/needs/{need.id}/dispatch", {"target": f"project:{project.id}"}).status_code
        == 302
    )
    fresh()
    assert db.session.get(Need, need.id).project_id == project.id
    assert (
        post(
            sec, f"/needs/{need.id}/dispatch", {"target": f"member:{world.member_a2.id}"}
        ).status_code
        == 302
    )
    fresh()
    assert db.session.get(Need, need.id).assignee_id == world.member_a2.id
    assert post(as_user("resident_a"), f"/needs/{need.id}/cancel").status_code == 302


def test_new_need_form(as_user, world, unchanged):
    c = as_user("resident_a")
    assert c.get("/needs/new").status_code == 200
    data = {"community_id": str(world.community_a.id), "title": "修水管", "category": "repair"}
    assert post(c, "/needs/new", data).status_code == 302
    with unchanged():
        resp = post(c, "/needs/new", {**data, "title": ""})
        assert resp.status_code == 422 and "必填" in text(resp)
        assert (
            post(c, "/needs/new", {**data, "community_id": str(world.community_b.id)}).status_code
            == 403
        )
        assert post(as_user("member_a"), "/needs/new", data).status_code == 403
    assert as_user("member_a").get("/needs/new").status_code == 403
    # a grid worker posts on behalf of a resident
    g = as_user("grid_a1")
    page = text(g.get("/needs/new"))
    assert "resident_a2" in page
    resp = post(g, "/needs/new", {**data, "on_behalf_of": str(world.resident_a2.id)})
    assert resp.status_code == 302
    need = db.session.scalars(
        sa.select(Need).where(Need.beneficiary_id == world.resident_a2.id)
    ).one()
    assert need.on_behalf and need.posted_by_id == world.grid_a1.id
    with unchanged():
        resp = post(g, "/needs/new", {**data, "on_behalf_of": str(world.member_a.id)})
        assert resp.status_code == 422 and "不是本社区居民" in text(resp)


# --- deliveries ---------------------------------------------------------------------


def _local(dt) -> str:
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def delivery_form(world, hours_a="2", hours_a2="1.5", **over):
    start = now() - timedelta(hours=4)
    return {
        "started_at": _local(start),
        "ended_at": _local(start + timedelta(hours=2)),
        f"participant_{world.member_a.id}": "1",
        f"hours_{world.member_a.id}": hours_a,
        f"participant_{world.member_a2.id}": "1",
        f"hours_{world.member_a2.id}": hours_a2,
        "beneficiaries": [str(world.resident_a.id), str(world.resident_a2.id)],
        **over,
    }


def test_record_delivery_page_shows_codes_once(as_user, world):
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    c = as_user("member_a")
    page = c.get(f"/projects/{project.id}/deliveries/new")
    assert page.status_code == 200 and "resident_a2" in text(page)
    assert_csp_clean(text(page))
    resp = post(c, f"/projects/{project.id}/deliveries/new", delivery_form(world))
    assert resp.status_code == 201, text(resp)[:3000]
    assert resp.headers["Cache-Control"] == "no-store"
    html = text(resp)
    codes = re.findall(r'<p class="pickup-code">(\d{6})</p>', html)
    assert len(codes) == 2
    assert html.count('src="data:image/svg+xml') == 2
    assert_csp_clean(html)
    delivery = db.session.scalars(sa.select(Delivery)).one()
    detail = text(c.get(f"/deliveries/{delivery.id}"))
    assert not any(code in detail for code in codes)
    assert "resident_a" in detail


@pytest.mark.parametrize(
    "over, field_text",
    [
        ({"hours_a": "3"}, "不能超过本次服务时长"),
        ({"hours_a": ""}, "必填"),
        ({"ended_at": ""}, "必填"),
        ({"beneficiaries": [str(10**6)]}, "用户 1000000 不是本社区居民。"),
    ],
)
def test_record_delivery_form_errors(as_user, world, unchanged, over, field_text):
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    form = delivery_form(world, hours_a=over.pop("hours_a", "2"), **over)
    with unchanged():
        resp = post(as_user("member_a"), f"/projects/{project.id}/deliveries/new", form)
    assert resp.status_code == 422
    assert field_text in text(resp)


def test_record_delivery_permissions(as_user, world, unchanged):
    project = make_project(
        world.member_a, world.community_a, status="approved", team=[world.member_a2]
    )
    from volunteer_market.database import atomic
    from volunteer_market.services import projects as project_service

    with atomic():
        project_service.request_join(world.member_a3, project)
    path = f"/projects/{project.id}/deliveries/new"
    for who, code in (
        ("member_a3", 403),
        ("secretary_a", 403),
        ("resident_a", 403),
        ("member_b", 403),
    ):
        assert as_user(who).get(path).status_code == code
        with unchanged():
            assert post(as_user(who), path, delivery_form(world)).status_code == code
    # an active team member may record
    assert as_user("member_a2").get(path).status_code == 200
    completed = make_project(world.member_a, world.community_a, status="completed", title="已结项")
    with unchanged():
        resp = post(
            as_user("member_a"), f"/projects/{completed.id}/deliveries/new", delivery_form(world)
        )
    assert resp.status_code == 409


def test_delivery_detail_visibility(as_user, world):
    project = make_project(world.member_a, world.community_a, status="approved")
    recorded = make_delivery(project, world.member_a, beneficiaries=[world.resident_a])
    path = f"/deliveries/{recorded.delivery.id}"
    for who, code in (
        ("member_a", 200),
        ("resident_a", 200),
        ("secretary_a", 200),
        ("resident_a2", 404),
        ("secretary_b", 404),
    ):
        assert as_user(who).get(path).status_code == code, who


# --- notifications ------------------------------------------------------------------


def test_notification_page_and_unread_count(as_user, world):
    project = make_project(world.member_a, world.community_a, status="submitted")
    c = as_user("member_a")
    html = text(c.get("/notifications"))
    assert "已提交审核" in html
    assert 'class="badge-count">1<' in html  # the nav shows the unread count
    assert_csp_clean(html)
    post(as_user("secretary_a"), f"/projects/{project.id}/review", {"decision": "approve"})
    html = text(c.get("/notifications"))
    assert "审核通过" in html and 'class="badge-count">2<' in html
    first = db.session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == world.member_a.id)
        .order_by(Notification.id)
    ).first()
    assert post(c, "/notifications", {"id": str(first.id)}).status_code == 302
    assert 'class="badge-count">1<' in text(c.get("/notifications"))
    # marking someone else's notification read changes nothing
    secretary_note = db.session.scalars(
        sa.select(Notification).where(Notification.user_id == world.secretary_a.id)
    ).first()
    post(c, "/notifications", {"id": str(secretary_note.id)})
    fresh()
    assert db.session.get(Notification, secretary_note.id).read_at is None
    assert post(c, "/notifications").status_code == 302
    assert "badge-count" not in text(c.get("/notifications"))


def test_notifications_api(api, world):
    make_project(world.member_a, world.community_a, status="approved")
    body = api.get("member_a", "/api/v1/notifications").get_json()
    assert body["unread_count"] == 2 and body["total"] == 2
    kinds = [n["kind"] for n in body["items"]]
    assert kinds == ["project.approve", "project.submit"]
    first = body["items"][1]["id"]
    resp = api.post("member_a", "/api/v1/notifications/read", {"ids": [first]})
    assert resp.get_json() == {"marked": 1, "unread_count": 1}
    assert api.get("member_a", "/api/v1/notifications", unread="true").get_json()["total"] == 1
    # another user's ids are ignored
    resp = api.post("member_a2", "/api/v1/notifications/read", {"ids": [first]})
    assert resp.get_json()["marked"] == 0
    resp = api.post("member_a", "/api/v1/notifications/read", {"ids": ["x"]})
    assert resp.status_code == 422
    resp = api.post("member_a", "/api/v1/notifications/read", {"all": True})
    assert resp.status_code == 422
    assert api.post("member_a", "/api/v1/notifications/read").get_json()["unread_count"] == 0
