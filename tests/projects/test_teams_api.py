"""Micro-teams over HTTP: join requests, approval by the owner, capacity, leave; menu orders."""

from __future__ import annotations

import pytest

from volunteer_market.models import ProjectMode

from ..factories import add_team_member, make_project
from .conftest import problem_fields


def team(api, who, project):
    resp = api.get(who, f"/api/v1/projects/{project.id}/team")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_join_approve_leave(api, world):
    project = make_project(world.member_a, world.community_a, status="approved", capacity=3)
    resp = api.post("member_a2", f"/api/v1/projects/{project.id}/team")
    assert resp.status_code == 201
    assert resp.get_json() == {"user_id": world.member_a2.id, "status": "pending"}
    # others see only active members; the owner sees the request
    assert [i["user_id"] for i in team(api, "resident_a", project)["items"]] == [world.member_a.id]
    owner_view = team(api, "member_a", project)
    assert [(i["user_id"], i["status"]) for i in owner_view["items"]] == [
        (world.member_a.id, "active"),
        (world.member_a2.id, "pending"),
    ]
    resp = api.post("member_a", f"/api/v1/projects/{project.id}/team/{world.member_a2.id}/approve")
    assert resp.status_code == 200
    assert resp.get_json() == {"user_id": world.member_a2.id, "status": "active"}
    assert team(api, "resident_a", project)["team_size"] == 2
    resp = api.post("member_a2", f"/api/v1/projects/{project.id}/team/leave")
    assert resp.status_code == 200 and resp.get_json()["status"] == "left"
    assert team(api, "resident_a", project)["team_size"] == 1
    # may ask again after leaving
    assert api.post("member_a2", f"/api/v1/projects/{project.id}/team").status_code == 201


def test_capacity_counts_the_owner(api, world, unchanged):
    project = make_project(world.member_a, world.community_a, status="approved", capacity=2)
    for who in ("member_a2", "member_a3"):
        assert api.post(who, f"/api/v1/projects/{project.id}/team").status_code == 201
    url = f"/api/v1/projects/{project.id}/team/{{}}/approve"
    assert api.post("member_a", url.format(world.member_a2.id)).status_code == 200
    with unchanged():
        resp = api.post("member_a", url.format(world.member_a3.id))
    assert resp.status_code == 409
    assert "full" in resp.get_json()["detail"]
    # a full team takes no new requests either
    from volunteer_market.models import Role

    from ..factories import make_user

    late = make_user("late_member", (Role.MEMBER, world.community_a))
    with unchanged():
        assert api.post(late, f"/api/v1/projects/{project.id}/team").status_code == 409


def test_capacity_one_means_owner_only(api, world, unchanged):
    project = make_project(world.member_a, world.community_a, status="approved", capacity=1)
    with unchanged():
        assert api.post("member_a2", f"/api/v1/projects/{project.id}/team").status_code == 409


@pytest.mark.parametrize(
    "who, code",
    [
        ("member_a", 409),  # the owner is already on it
        ("member_b", 403),  # member of another community (sees the public project)
        ("resident_a", 403),
        ("secretary_a", 403),
        ("grid_a1", 403),
        ("admin", 403),
    ],
)
def test_who_may_ask_to_join(api, world, unchanged, who, code):
    project = make_project(world.member_a, world.community_a, status="approved")
    with unchanged():
        assert api.post(who, f"/api/v1/projects/{project.id}/team").status_code == code


@pytest.mark.parametrize(
    "state, code", [("draft", 404), ("rejected", 404), ("completed", 409), ("cancelled", 404)]
)
def test_join_in_closed_states(api, world, unchanged, state, code):
    project = make_project(world.member_a, world.community_a, status=state)
    with unchanged():
        assert api.post("member_a2", f"/api/v1/projects/{project.id}/team").status_code == code


def test_join_while_in_review(api, world):
    project = make_project(world.member_a, world.community_a, status="submitted")
    assert api.post("member_a2", f"/api/v1/projects/{project.id}/team").status_code == 201
    assert api.post("member_b", f"/api/v1/projects/{project.id}/team").status_code == 404


def test_double_request_is_409(api, world, unchanged):
    project = make_project(world.member_a, world.community_a, status="approved")
    assert api.post("member_a2", f"/api/v1/projects/{project.id}/team").status_code == 201
    with unchanged():
        assert api.post("member_a2", f"/api/v1/projects/{project.id}/team").status_code == 409
    api.post("member_a", f"/api/v1/projects/{project.id}/team/{world.member_a2.id}/approve")
    with unchanged():
        assert api.post("member_a2", f"/api/v1/projects/{project.id}/team").status_code == 409


@pytest.mark.parametrize(
    "who, code",
    [
        ("member_a3", 403),
        ("secretary_a", 403),
        ("member_a2", 403),
        ("secretary_b", 403),
        ("resident_a", 403),
    ],
)
def test_only_the_owner_answers_requests(api, world, unchanged, who, code):
    project = make_project(world.member_a, world.community_a, status="approved")
    api.post("member_a2", f"/api/v1/projects/{project.id}/team")
    for verb in ("approve", "decline"):
        with unchanged():
            resp = api.post(who, f"/api/v1/projects/{project.id}/team/{world.member_a2.id}/{verb}")
        assert resp.status_code == code


def test_answering_a_missing_or_answered_request(api, world, unchanged):
    project = make_project(world.member_a, world.community_a, status="approved")
    base = f"/api/v1/projects/{project.id}/team"
    with unchanged():
        assert api.post("member_a", f"{base}/{world.member_a3.id}/approve").status_code == 404
        assert api.post("member_a", f"{base}/99999/decline").status_code == 404
    api.post("member_a2", base)
    assert api.post("member_a", f"{base}/{world.member_a2.id}/decline").status_code == 200
    with unchanged():
        assert api.post("member_a", f"{base}/{world.member_a2.id}/approve").status_code == 409
        assert api.post("member_a", f"{base}/{world.member_a2.id}/decline").status_code == 409


def test_leave_rules(api, world, unchanged):
    project = make_project(world.member_a, world.community_a, status="approved")
    with unchanged():
        assert api.post("member_a", f"/api/v1/projects/{project.id}/team/leave").status_code == 409
        assert api.post("member_a2", f"/api/v1/projects/{project.id}/team/leave").status_code == 409
    api.post("member_a2", f"/api/v1/projects/{project.id}/team")
    assert api.post("member_a2", f"/api/v1/projects/{project.id}/team/leave").status_code == 200


def test_team_answers_are_notified(api, world):
    project = make_project(world.member_a, world.community_a, status="approved")
    api.post("member_a2", f"/api/v1/projects/{project.id}/team")
    api.post("member_a", f"/api/v1/projects/{project.id}/team/{world.member_a2.id}/approve")
    kinds = [n["kind"] for n in api.get("member_a2", "/api/v1/notifications").get_json()["items"]]
    assert kinds == ["team.approved"]
    kinds = [n["kind"] for n in api.get("member_a", "/api/v1/notifications").get_json()["items"]]
    assert "team.requested" in kinds


# --- menu orders --------------------------------------------------------------


def test_resident_orders_a_menu_service(api, world):
    project = make_project(
        world.member_a,
        world.community_a,
        status="approved",
        mode=ProjectMode.MENU,
        title="上门理发",
    )
    resp = api.post(
        "resident_a", f"/api/v1/projects/{project.id}/orders", {"description": "周六上午"}
    )
    assert resp.status_code == 201, resp.get_json()
    need = resp.get_json()
    assert need["status"] == "dispatched"
    assert need["project_id"] == project.id
    assert need["beneficiary_id"] == world.resident_a.id
    assert need["title"] == "上门理发" and need["description"] == "周六上午"
    assert need["grid_id"] == world.areas["grid_a1"].id
    # empty body is fine too
    assert api.post("resident_a2", f"/api/v1/projects/{project.id}/orders").status_code == 201


@pytest.mark.parametrize(
    "who, code",
    [
        ("member_a2", 403),
        ("secretary_a", 403),
        ("grid_a1", 403),
        ("resident_b", 403),
        ("member_a", 403),
    ],
)
def test_only_residents_of_the_community_order(api, world, unchanged, who, code):
    project = make_project(
        world.member_a, world.community_a, status="approved", mode=ProjectMode.MENU
    )
    with unchanged():
        assert api.post(who, f"/api/v1/projects/{project.id}/orders").status_code == code


@pytest.mark.parametrize(
    "state, mode, code",
    [
        ("approved", ProjectMode.EVENT, 409),
        ("completed", ProjectMode.MENU, 409),
        ("submitted", ProjectMode.MENU, 404),  # residents do not see projects in review
    ],
)
def test_orders_need_an_approved_menu(api, world, unchanged, state, mode, code):
    project = make_project(world.member_a, world.community_a, status=state, mode=mode)
    with unchanged():
        assert api.post("resident_a", f"/api/v1/projects/{project.id}/orders").status_code == code


def test_order_rejects_unknown_fields(api, world, unchanged):
    project = make_project(
        world.member_a, world.community_a, status="approved", mode=ProjectMode.MENU
    )
    with unchanged():
        resp = api.post("resident_a", f"/api/v1/projects/{project.id}/orders", {"status": "closed"})
    assert resp.status_code == 422 and "status" in problem_fields(resp)


def test_team_member_is_reused_by_factories(world):
    project = make_project(world.member_a, world.community_a, status="approved")
    membership = add_team_member(project, world.member_a2)
    assert membership.status.value == "active"
