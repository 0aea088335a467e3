"""/api/v1/projects: create, edit, lifecycle over HTTP, lists, duplicate hints, covers."""

from __future__ import annotations

import pytest

from volunteer_market.extensions import db
from volunteer_market.models import ProjectMode

from ..factories import image_bytes, make_project, same_picture
from .conftest import StatementCounter, multipart, problem_fields

VALID = {
    "title": "义务理发",
    "description": "每月第一个周六上午在社区活动室为老人免费理发。",
    "category": "elderly",
    "mode": "event",
    "capacity": 5,
    "planned_hours": 2.5,
    "starts_at": "2026-06-06T09:00:00+08:00",
    "ends_at": "2026-06-06T11:30:00+08:00",
    "skills": ["理发"],
    "target_groups": ["空巢老人", "残疾人"],
}


def valid(world, **over):
    return {**VALID, "community_id": world.community_a.id, **over}


# --- create -------------------------------------------------------------------


def test_member_proposes_a_draft(api, world):
    resp = api.post("member_a", "/api/v1/projects", valid(world))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "draft"
    assert body["owner_id"] == world.member_a.id
    assert body["owner"] == {"id": world.member_a.id, "display_name": "member_a"}
    assert body["community"]["id"] == world.community_a.id
    assert body["planned_hours"] == 2.5
    assert body["team_size"] == 1 and body["capacity"] == 5
    assert body["starts_at"].startswith("2026-06-06T01:00:00")  # stored and returned in UTC
    assert body["target_groups"] == ["空巢老人", "残疾人"]
    assert body["cover_url"] is None


@pytest.mark.parametrize(
    "who",
    ["resident_a", "secretary_a", "grid_a1", "member_b", "member_c", "officer_street", "admin"],
)
def test_only_members_of_the_community_propose(api, world, unchanged, who):
    with unchanged():
        resp = api.post(who, "/api/v1/projects", valid(world))
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "over, field",
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "长" * 101}, "title"),
        ({"description": ""}, "description"),
        ({"category": "cooking"}, "category"),
        ({"mode": "daily"}, "mode"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": 301}, "capacity"),
        ({"capacity": 2.5}, "capacity"),
        ({"capacity": "many"}, "capacity"),
        ({"planned_hours": 0}, "planned_hours"),
        ({"planned_hours": -1}, "planned_hours"),
        ({"planned_hours": 0.001}, "planned_hours"),
        ({"planned_hours": 100000}, "planned_hours"),
        ({"starts_at": "2026-06-06T09:00:00"}, "starts_at"),  # no offset
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"ends_at": "2026-06-06T08:00:00+08:00"}, "ends_at"),  # before the start
        ({"skills": ["x" * 21]}, "skills"),
        ({"skills": [str(i) for i in range(11)]}, "skills"),
        ({"community_id": 0}, "community_id"),
        ({"community_id": 99999}, "community_id"),
        ({"status": "approved"}, "status"),  # never from the client
        ({"owner_id": 1}, "owner_id"),
        ({"team_size": 3}, "team_size"),
    ],
)
def test_create_rejects_bad_fields(api, world, unchanged, over, field):
    with unchanged():
        resp = api.post("member_a", "/api/v1/projects", valid(world, **over))
    assert resp.status_code == 422, resp.get_json()
    assert any(name.split(".")[0] == field for name in problem_fields(resp))


def test_create_community_must_be_a_community(api, world, unchanged):
    with unchanged():
        resp = api.post(
            "member_a", "/api/v1/projects", valid(world, community_id=world.areas["grid_a1"].id)
        )
    assert resp.status_code == 422
    assert "community_id" in problem_fields(resp)


@pytest.mark.parametrize(
    "missing",
    ["title", "description", "category", "community_id", "mode", "capacity", "planned_hours"],
)
def test_create_requires_fields(api, world, unchanged, missing):
    data = valid(world)
    del data[missing]
    with unchanged():
        resp = api.post("member_a", "/api/v1/projects", data)
    assert resp.status_code == 422
    assert missing in problem_fields(resp)


def test_malformed_json_is_400(api, world, unchanged):
    with unchanged():
        resp = api.post(
            "member_a",
            "/api/v1/projects",
            data="{not json",
            content_type="application/json",
        )
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"


def test_requires_a_token(client, world):
    assert client.get("/api/v1/projects").status_code == 401
    assert client.post("/api/v1/projects", json=valid(world)).status_code == 401


# --- edit ---------------------------------------------------------------------


def test_owner_edits_a_draft(api, world):
    project = make_project(world.member_a, world.community_a)
    resp = api.patch(
        "member_a",
        f"/api/v1/projects/{project.id}",
        {"title": "义务理发进社区", "planned_hours": 3},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["title"] == "义务理发进社区"
    assert resp.get_json()["planned_hours"] == 3


@pytest.mark.parametrize(
    "who, code",
    [
        ("member_a2", 404),  # another member cannot even see a draft
        ("secretary_a", 403),  # sees it, may not edit it
        ("officer_street", 403),
        ("admin", 403),
        ("secretary_b", 404),
        ("resident_a", 404),
    ],
)
def test_only_the_owner_edits(api, world, unchanged, who, code):
    project = make_project(world.member_a, world.community_a)
    with unchanged():
        resp = api.patch(who, f"/api/v1/projects/{project.id}", {"title": "别人的改动"})
    assert resp.status_code == code


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "approved"}, "status"),
        ({"owner_id": 5}, "owner_id"),
        ({"community_id": 3}, "community_id"),
        ({"title": None}, "title"),
        ({"capacity": 0}, "capacity"),
        (
            {"ends_at": "2026-01-01T00:00:00+08:00", "starts_at": "2026-02-01T00:00:00+08:00"},
            "ends_at",
        ),
    ],
)
def test_edit_rejects_bad_fields(api, world, unchanged, body, field):
    project = make_project(world.member_a, world.community_a)
    with unchanged():
        resp = api.patch("member_a", f"/api/v1/projects/{project.id}", body)
    assert resp.status_code == 422
    assert field in problem_fields(resp)


def test_edit_schedule_is_checked_against_stored_values(api, world, unchanged):
    project = make_project(world.member_a, world.community_a)
    api.patch(
        "member_a", f"/api/v1/projects/{project.id}", {"starts_at": "2026-06-06T09:00:00+08:00"}
    )
    with unchanged():
        resp = api.patch(
            "member_a", f"/api/v1/projects/{project.id}", {"ends_at": "2026-06-06T08:00:00+08:00"}
        )
    assert resp.status_code == 422 and "ends_at" in problem_fields(resp)


def test_capacity_cannot_drop_below_the_team(api, world, unchanged):
    project = make_project(
        world.member_a,
        world.community_a,
        status="submitted",
        team=[world.member_a2, world.member_a3],
    )
    api.post(
        "secretary_a",
        f"/api/v1/projects/{project.id}/review",
        {"decision": "request_changes", "comment": "补充时间"},
    )
    with unchanged():
        resp = api.patch("member_a", f"/api/v1/projects/{project.id}", {"capacity": 2})
    assert resp.status_code == 422 and "capacity" in problem_fields(resp)
    assert (
        api.patch("member_a", f"/api/v1/projects/{project.id}", {"capacity": 3}).status_code == 200
    )


@pytest.mark.parametrize("state", ["submitted", "approved", "rejected", "completed", "cancelled"])
def test_edit_in_wrong_state_is_409(api, world, unchanged, state):
    project = make_project(world.member_a, world.community_a, status=state)
    with unchanged():
        resp = api.patch("member_a", f"/api/v1/projects/{project.id}", {"title": "晚了"})
    assert resp.status_code == 409
    assert state in resp.get_json()["detail"]


# --- lifecycle over HTTP -----------------------------------------------------

HTTP_ACTIONS = {
    "submit": ("submit", None),
    "withdraw": ("withdraw", None),
    "approve": ("review", {"decision": "approve"}),
    "reject": ("review", {"decision": "reject", "comment": "与已有项目重复"}),
    "request_changes": ("review", {"decision": "request_changes", "comment": "请补充时间"}),
    "cancel": ("cancel", {"comment": "不办了"}),
    "complete": ("complete", None),
}


@pytest.mark.parametrize("action", list(HTTP_ACTIONS))
@pytest.mark.parametrize(
    "state",
    ["draft", "submitted", "changes_requested", "approved", "rejected", "completed", "cancelled"],
)
def test_lifecycle_over_http(api, world, unchanged, state, action):
    from volunteer_market.models import ProjectAction, ProjectStatus

    from .test_project_lifecycle import expected_outcome

    path, body = HTTP_ACTIONS[action]
    project = make_project(world.member_a, world.community_a, status=state)
    url = f"/api/v1/projects/{project.id}/{path}"
    codes = {"NotFound": 404, "Forbidden": 403, "Conflict": 409}
    winners = []
    for who in (
        "member_a2",
        "secretary_b",
        "resident_a",
        "officer_street",
        "member_a",
        "secretary_a",
    ):
        outcome = expected_outcome(ProjectStatus(state), ProjectAction(action), who)
        if isinstance(outcome, ProjectStatus):
            winners.append((who, outcome))
            continue
        with unchanged():
            resp = api.post(who, url, body)
        assert resp.status_code == codes[outcome.__name__], (who, resp.get_json())
        assert resp.mimetype == "application/problem+json"
    for who, next_state in winners[:1]:
        resp = api.post(who, url, body)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["status"] == next_state.value


@pytest.mark.parametrize(
    "body, field",
    [
        ({"decision": "reject"}, "comment"),
        ({"decision": "request_changes", "comment": "  "}, "comment"),
        ({"decision": "maybe", "comment": "x"}, "decision"),
        ({}, "decision"),
        ({"decision": "approve", "status": "approved"}, "status"),
        ({"decision": "reject", "comment": "长" * 1001}, "comment"),
    ],
)
def test_review_validation(api, world, unchanged, body, field):
    project = make_project(world.member_a, world.community_a, status="submitted")
    with unchanged():
        resp = api.post("secretary_a", f"/api/v1/projects/{project.id}/review", body)
    assert resp.status_code == 422
    assert field in problem_fields(resp)


def test_review_history_is_listed(api, world):
    project = make_project(world.member_a, world.community_a, status="submitted")
    api.post(
        "secretary_a",
        f"/api/v1/projects/{project.id}/review",
        {"decision": "request_changes", "comment": "请补充场地"},
    )
    resp = api.get("member_a", f"/api/v1/projects/{project.id}/transitions")
    items = resp.get_json()["items"]
    assert [(i["from_status"], i["to_status"]) for i in items] == [
        ("draft", "submitted"),
        ("submitted", "changes_requested"),
    ]
    assert items[1]["comment"] == "请补充场地"
    assert items[1]["actor"]["id"] == world.secretary_a.id


def test_unknown_project_is_404(api, world):
    assert api.get("member_a", "/api/v1/projects/99999").status_code == 404
    assert api.post("member_a", "/api/v1/projects/99999/submit").status_code == 404


# --- reading ------------------------------------------------------------------


def test_visibility_of_single_projects(api, world):
    draft = make_project(world.member_a, world.community_a)
    submitted = make_project(
        world.member_a, world.community_a, status="submitted", title="健康义诊"
    )
    approved = make_project(world.member_a, world.community_a, status="approved", title="法律讲堂")
    cases = {
        "member_a": (200, 200, 200),
        "member_a2": (404, 200, 200),
        "secretary_a": (200, 200, 200),
        "grid_a1": (200, 200, 200),
        "officer_street": (200, 200, 200),
        "officer_other": (404, 404, 200),
        "secretary_b": (404, 404, 200),
        "member_b": (404, 404, 200),
        "resident_a": (404, 404, 200),
    }
    for who, codes in cases.items():
        got = tuple(
            api.get(who, f"/api/v1/projects/{p.id}").status_code
            for p in (draft, submitted, approved)
        )
        assert got == codes, who


def test_list_filters_and_visibility(api, world):
    make_project(world.member_a, world.community_a, title="义务理发")
    make_project(
        world.member_a, world.community_a, status="approved", title="健康义诊", category="health"
    )
    make_project(
        world.member_a2,
        world.community_a,
        status="approved",
        title="代买药",
        mode=ProjectMode.MENU,
        category="errand",
    )
    make_project(
        world.member_b, world.community_b, status="approved", title="法律讲堂", category="legal"
    )
    make_project(world.member_b, world.community_b, status="submitted", title="文化墙手绘")

    def titles(who, **params):
        resp = api.get(who, "/api/v1/projects", **params)
        assert resp.status_code == 200, resp.get_json()
        return sorted(i["title"] for i in resp.get_json()["items"])

    assert titles("resident_a") == ["代买药", "健康义诊", "法律讲堂"]
    assert titles("member_a") == ["义务理发", "代买药", "健康义诊", "法律讲堂"]
    assert titles("secretary_b") == ["代买药", "健康义诊", "文化墙手绘", "法律讲堂"]
    assert titles("resident_a", community_id=world.community_a.id) == ["代买药", "健康义诊"]
    assert titles("resident_a", mode="menu") == ["代买药"]
    assert titles("resident_a", category="legal") == ["法律讲堂"]
    assert titles("member_a", status="draft") == ["义务理发"]
    assert titles("resident_a", status="draft") == []
    assert titles("resident_a", q="义诊") == ["健康义诊"]
    assert titles("resident_a", q="100%_") == []
    assert titles("member_a", mine="true") == ["义务理发", "健康义诊"]
    page = api.get("resident_a", "/api/v1/projects", per_page=2, page=2).get_json()
    assert (page["page"], page["per_page"], page["total"], len(page["items"])) == (2, 2, 3, 1)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"per_page": 101}, "per_page"),
        ({"page": 0}, "page"),
        ({"status": "open"}, "status"),
        ({"mode": "x"}, "mode"),
        ({"category": "x"}, "category"),
        ({"community_id": "abc"}, "community_id"),
    ],
)
def test_list_rejects_bad_query(api, world, params, field):
    resp = api.get("member_a", "/api/v1/projects", **params)
    assert resp.status_code == 422
    assert field in problem_fields(resp)


def test_list_has_a_constant_number_of_statements(api, world):
    owners = [
        (world.member_a, world.community_a),
        (world.member_a2, world.community_a),
        (world.member_a3, world.community_a),
        (world.member_b, world.community_b),
        (world.member_c, world.community_c),
    ]
    api.headers(world.resident_a)  # issue the token before counting

    def count_for_listing() -> tuple[int, int]:
        db.session.expunge_all()
        with StatementCounter(db.engine) as counter:
            resp = api.get("resident_a", "/api/v1/projects", per_page=100)
        assert resp.status_code == 200
        return counter.count, resp.get_json()["total"]

    for i in range(5):
        owner, community = owners[i]
        make_project(owner, community, status="approved", title=f"项目{i}")
    small, total_small = count_for_listing()
    for i in range(5, 50):
        owner, community = owners[i % 5]
        make_project(owner, community, status="approved", title=f"项目{i}")
    large, total_large = count_for_listing()
    assert (total_small, total_large) == (5, 50)
    assert large == small, f"{small} statements for 5 projects, {large} for 50"


# --- duplicate hint -----------------------------------------------------------


def test_similar_titles(api, world):
    make_project(world.member_a2, world.community_a, status="approved", title="义务理发")
    make_project(world.member_a2, world.community_a, status="submitted", title="义务理发服务")
    make_project(
        world.member_a2, world.community_a, status="draft", title="义务理发小队"
    )  # drafts are private
    make_project(world.member_a2, world.community_a, status="approved", title="健康义诊")
    make_project(
        world.member_b, world.community_b, status="approved", title="义务理发"
    )  # other community
    resp = api.get(
        "member_a",
        "/api/v1/projects/similar",
        community_id=world.community_a.id,
        title="社区义务理发",
    )
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert [i["title"] for i in items] == ["义务理发", "义务理发服务"]
    assert all(0.4 <= i["score"] <= 1 for i in items)


def test_similar_permissions_and_validation(api, world):
    assert (
        api.get(
            "member_b", "/api/v1/projects/similar", community_id=world.community_a.id, title="理发"
        ).status_code
        == 403
    )
    assert (
        api.get(
            "resident_a",
            "/api/v1/projects/similar",
            community_id=world.community_a.id,
            title="理发",
        ).status_code
        == 403
    )
    assert (
        api.get(
            "secretary_a",
            "/api/v1/projects/similar",
            community_id=world.community_a.id,
            title="理发",
        ).status_code
        == 200
    )
    resp = api.get("member_a", "/api/v1/projects/similar", community_id=world.community_a.id)
    assert resp.status_code == 422 and "title" in problem_fields(resp)
    resp = api.get("member_a", "/api/v1/projects/similar", community_id=99999, title="理发")
    assert resp.status_code == 422 and "community_id" in problem_fields(resp)


def test_similarity_function():
    from volunteer_market.services.projects import title_similarity

    assert title_similarity("义务理发", "义务理发") == 1
    assert title_similarity("义务理发", "义务 理发！") == 1
    assert title_similarity("义务理发", "健康义诊") == 0
    assert title_similarity("Free haircut", "free HAIRCUTS") > 0.8
    assert title_similarity("", "义务理发") == 0


# --- cover image --------------------------------------------------------------

PNG = image_bytes("png")
JPEG = image_bytes("jpg")
WEBP = image_bytes("webp")


@pytest.mark.parametrize(
    "data, mime", [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")]
)
def test_cover_upload_and_download(api, world, app, data, mime):
    project = make_project(world.member_a, world.community_a)
    resp = api.put(
        "member_a",
        f"/api/v1/projects/{project.id}/cover",
        **multipart(data, filename="../../etc/passwd.png"),
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["cover_url"] == f"/api/v1/projects/{project.id}/cover"
    got = api.get("member_a", f"/api/v1/projects/{project.id}/cover")
    assert got.status_code == 200 and same_picture(got.data, data) and got.mimetype == mime
    got.close()
    assert api.get("member_a2", f"/api/v1/projects/{project.id}/cover").status_code == 404
    import os

    names = os.listdir(app.config["UPLOAD_FOLDER"])
    assert len(names) == 1 and "passwd" not in names[0]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"GIF89a" + b"\x00" * 20, "PNG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "PNG"),
        (b"", "empty"),
        (PNG + b"\x00" * (2 * 1024 * 1024), "2 MB"),
    ],
)
def test_cover_rejects_bad_files(api, world, unchanged, app, data, message):
    project = make_project(world.member_a, world.community_a)
    with unchanged():
        resp = api.put(
            "member_a",
            f"/api/v1/projects/{project.id}/cover",
            **multipart(data, filename="x.png"),
        )
    assert resp.status_code == 422
    assert message in " ".join(problem_fields(resp)["file"])
    import os

    folder = app.config["UPLOAD_FOLDER"]
    assert not os.path.isdir(folder) or os.listdir(folder) == []


def test_cover_only_by_the_owner_in_editable_states(api, world, unchanged, app):
    project = make_project(world.member_a, world.community_a, status="approved")
    with unchanged():
        resp = api.put(
            "member_a",
            f"/api/v1/projects/{project.id}/cover",
            **multipart(PNG, filename="x.png"),
        )
        assert resp.status_code == 409
        resp = api.put(
            "secretary_a",
            f"/api/v1/projects/{project.id}/cover",
            **multipart(PNG, filename="x.png"),
        )
        assert resp.status_code == 403
