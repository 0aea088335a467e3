"""Project pages: the list, a project, propose and edit, lifecycle and review, teams
and orders -- with the right user, wrong users and bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import (
    Need,
    NeedStatus,
    Project,
    ProjectMode,
    ProjectStatus,
    TeamMembership,
    TeamStatus,
)

from ..conftest import csrf_token
from ..factories import image_bytes, make_project
from .conftest import assert_csp_clean, fresh, multipart, post, text

# --- the project list and a project -------------------------------------------------


def test_pages_need_a_login(client, world):
    for path in ("/projects", "/projects/new", "/needs", "/review", "/notifications"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_project_list_and_filters(as_user, world):
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


@pytest.mark.parametrize("bad", [str(10**20), "2147483648", "²"])
def test_project_list_ignores_an_impossible_community_filter(as_user, world, bad):
    make_project(world.member_a, world.community_a, status="approved", title="义务理发")
    resp = as_user("resident_a").get("/projects", query_string={"community_id": bad})
    assert resp.status_code == 200 and "义务理发" in text(resp)  # as if there were no filter


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
        **multipart(image_bytes("png"), field="cover", csrf_token=token, **form),
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


@pytest.mark.parametrize("bad", [str(10**20), "2147483648", "²"])
def test_propose_in_an_impossible_community_is_422(as_user, world, unchanged, bad):
    with unchanged():
        resp = post(as_user("member_a"), "/projects/new", form_of(world, community_id=bad))
    assert resp.status_code == 422 and 'class="field-errors"' in text(resp)


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
