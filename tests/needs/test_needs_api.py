"""/api/v1/needs: post (self / on behalf), claim, dispatch, release, cancel, visibility."""

from __future__ import annotations

import pytest

from volunteer_market.models import ProjectMode

from ..factories import make_delivery, make_need, make_project
from ..projects.conftest import problem_fields


def need_body(world, **over):
    return {
        "community_id": world.community_a.id,
        "title": "代买药",
        "description": "需要帮忙买降压药。",
        "category": "errand",
        **over,
    }


# --- posting ------------------------------------------------------------------


def test_resident_posts_for_themself(api, world):
    resp = api.post("resident_a", "/api/v1/needs", need_body(world))
    assert resp.status_code == 201, resp.get_json()
    need = resp.get_json()
    assert need["status"] == "open"
    assert need["beneficiary_id"] == need["posted_by_id"] == world.resident_a.id
    assert need["on_behalf"] is False
    assert need["grid_id"] == world.areas["grid_a1"].id
    assert need["beneficiary"] == {"id": world.resident_a.id, "display_name": "resident_a"}


def test_grid_worker_posts_on_behalf_of_a_resident(api, world):
    resp = api.post("grid_a1", "/api/v1/needs", need_body(world, on_behalf_of=world.resident_a2.id))
    assert resp.status_code == 201, resp.get_json()
    need = resp.get_json()
    assert need["on_behalf"] is True
    assert need["beneficiary_id"] == world.resident_a2.id
    assert need["posted_by_id"] == world.grid_a1.id
    # the resident is told and sees it
    assert api.get("resident_a2", f"/api/v1/needs/{need['id']}").status_code == 200
    kinds = [n["kind"] for n in api.get("resident_a2", "/api/v1/notifications").get_json()["items"]]
    assert kinds == ["need.posted_for_you"]


@pytest.mark.parametrize(
    "who, over, code",
    [
        ("member_a", {}, 403),  # not a resident
        ("secretary_a", {}, 403),
        ("grid_a1", {}, 403),  # a grid worker is no resident themself
        ("resident_b", {}, 403),  # resident of another community
        ("resident_a", {"on_behalf_of": "resident_a2"}, 403),  # residents post only for themselves
        ("grid_b1", {"on_behalf_of": "resident_a"}, 403),  # grid worker of another community
        ("member_a", {"on_behalf_of": "resident_a"}, 403),
        ("grid_a1", {"on_behalf_of": "member_a"}, 422),  # not a resident
        ("grid_a1", {"on_behalf_of": "resident_b"}, 422),  # resident elsewhere
        ("grid_a1", {"on_behalf_of": 99999}, 422),
    ],
)
def test_who_may_post(api, world, unchanged, who, over, code):
    if isinstance(over.get("on_behalf_of"), str):
        over = {"on_behalf_of": world.users[over["on_behalf_of"]].id}
    with unchanged():
        resp = api.post(who, "/api/v1/needs", need_body(world, **over))
    assert resp.status_code == code, resp.get_json()
    if code == 422:
        assert "on_behalf_of" in problem_fields(resp)


@pytest.mark.parametrize(
    "over, field",
    [
        ({"title": ""}, "title"),
        ({"title": "长" * 101}, "title"),
        ({"category": "food"}, "category"),
        ({"community_id": "x"}, "community_id"),
        ({"community_id": 99999}, "community_id"),
        ({"on_behalf_of": 0}, "on_behalf_of"),
        ({"status": "closed"}, "status"),
        ({"assignee_id": 3}, "assignee_id"),
        ({"project_id": 1}, "project_id"),
    ],
)
def test_post_validation(api, world, unchanged, over, field):
    with unchanged():
        resp = api.post("resident_a", "/api/v1/needs", need_body(world, **over))
    assert resp.status_code == 422
    assert field in problem_fields(resp)


@pytest.mark.parametrize("missing", ["title", "category", "community_id"])
def test_post_requires_fields(api, world, unchanged, missing):
    body = need_body(world)
    del body[missing]
    with unchanged():
        resp = api.post("resident_a", "/api/v1/needs", body)
    assert resp.status_code == 422 and missing in problem_fields(resp)


def test_post_malformed_json(api, world, unchanged):
    with unchanged():
        resp = api.post("resident_a", "/api/v1/needs", data="[", content_type="application/json")
    assert resp.status_code == 400


# --- claiming -----------------------------------------------------------------


def test_member_claims_an_open_need(api, world, unchanged):
    need = make_need(world.resident_a, world.community_a)
    resp = api.post("member_a", f"/api/v1/needs/{need.id}/claim")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "claimed" and body["assignee_id"] == world.member_a.id
    assert body["assignee"]["display_name"] == "member_a"
    with unchanged():
        resp = api.post("member_a2", f"/api/v1/needs/{need.id}/claim")
    assert resp.status_code == 409
    assert "taken" in resp.get_json()["detail"]
    kinds = [n["kind"] for n in api.get("resident_a", "/api/v1/notifications").get_json()["items"]]
    assert kinds == ["need.claimed"]


@pytest.mark.parametrize(
    "who, code",
    [
        ("resident_a2", 404),  # another resident does not see it
        ("member_b", 404),  # member of another community does not see it
        ("secretary_b", 404),
        ("secretary_a", 403),  # sees it, does not claim
        ("grid_a1", 403),
        ("officer_street", 403),
        ("resident_a", 403),  # the resident themself
    ],
)
def test_who_may_claim(api, world, unchanged, who, code):
    need = make_need(world.resident_a, world.community_a)
    with unchanged():
        assert api.post(who, f"/api/v1/needs/{need.id}/claim").status_code == code


def test_claim_unknown_need(api, world):
    assert api.post("member_a", "/api/v1/needs/99999/claim").status_code == 404


# --- dispatching --------------------------------------------------------------


def test_secretary_dispatches_to_a_project_then_a_member(api, world):
    need = make_need(world.resident_a, world.community_a)
    project = make_project(world.member_a, world.community_a, status="approved")
    resp = api.post("secretary_a", f"/api/v1/needs/{need.id}/dispatch", {"project_id": project.id})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["status"], resp.get_json()["project_id"]) == ("dispatched", project.id)
    # reassign to a member
    resp = api.post(
        "secretary_a", f"/api/v1/needs/{need.id}/dispatch", {"member_id": world.member_a2.id}
    )
    body = resp.get_json()
    assert (body["status"], body["project_id"], body["assignee_id"]) == (
        "dispatched",
        None,
        world.member_a2.id,
    )
    kinds = [n["kind"] for n in api.get("member_a2", "/api/v1/notifications").get_json()["items"]]
    assert kinds == ["need.dispatched"]
    # a dispatched need is not on the board for claiming
    assert api.post("member_a3", f"/api/v1/needs/{need.id}/claim").status_code == 409


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "_schema"),
        ({"project_id": 1, "member_id": 1}, "_schema"),
        ({"project_id": "x"}, "project_id"),
        ({"member_id": "resident_a"}, "member_id"),  # a resident is no member
        ({"member_id": "member_b"}, "member_id"),  # member of another community
        ({"member_id": 99999}, "member_id"),
        ({"project_id": "other_project"}, "project_id"),
        ({"project_id": "draft_project"}, "project_id"),
        ({"project_id": 99999}, "project_id"),
        ({"project_id": "approved", "note": "x"}, "note"),
    ],
)
def test_dispatch_validation(api, world, unchanged, body, field):
    need = make_need(world.resident_a, world.community_a)
    named = {
        "other_project": lambda: (
            make_project(world.member_b, world.community_b, status="approved").id
        ),
        "draft_project": lambda: make_project(world.member_a, world.community_a).id,
        "approved": lambda: make_project(world.member_a, world.community_a, status="approved").id,
    }
    body = dict(body)
    for key, value in list(body.items()):
        if value in named:
            body[key] = named[value]()
        elif isinstance(value, str) and value in world.users:
            body[key] = world.users[value].id
    with unchanged():
        resp = api.post("secretary_a", f"/api/v1/needs/{need.id}/dispatch", body)
    assert resp.status_code == 422, resp.get_json()
    assert field in problem_fields(resp)


@pytest.mark.parametrize(
    "who, code",
    [
        ("member_a", 403),
        ("grid_a1", 403),
        ("officer_street", 403),
        ("resident_a", 403),
        ("secretary_b", 404),
    ],
)
def test_only_the_secretary_dispatches(api, world, unchanged, who, code):
    need = make_need(world.resident_a, world.community_a)
    with unchanged():
        resp = api.post(who, f"/api/v1/needs/{need.id}/dispatch", {"member_id": world.member_a2.id})
    assert resp.status_code == code


def test_closed_or_cancelled_needs_are_not_dispatched(api, world, unchanged):
    need = make_need(world.resident_a, world.community_a)
    api.post("resident_a", f"/api/v1/needs/{need.id}/cancel")
    with unchanged():
        resp = api.post(
            "secretary_a", f"/api/v1/needs/{need.id}/dispatch", {"member_id": world.member_a.id}
        )
    assert resp.status_code == 409


# --- release and cancel -------------------------------------------------------


def test_release_back_to_the_board(api, world, unchanged):
    need = make_need(world.resident_a, world.community_a)
    api.post("member_a", f"/api/v1/needs/{need.id}/claim")
    with unchanged():
        assert api.post("member_a2", f"/api/v1/needs/{need.id}/release").status_code == 403
        assert api.post("resident_a", f"/api/v1/needs/{need.id}/release").status_code == 403
    resp = api.post("member_a", f"/api/v1/needs/{need.id}/release")
    assert resp.status_code == 200
    assert (resp.get_json()["status"], resp.get_json()["assignee_id"]) == ("open", None)
    with unchanged():
        assert api.post("member_a", f"/api/v1/needs/{need.id}/release").status_code in (403, 409)
        assert api.post("secretary_a", f"/api/v1/needs/{need.id}/release").status_code == 409
    # claimable again
    assert api.post("member_a2", f"/api/v1/needs/{need.id}/claim").status_code == 200
    # the secretary may release anybody's
    assert api.post("secretary_a", f"/api/v1/needs/{need.id}/release").status_code == 200


def test_project_owner_releases_an_order(api, world):
    project = make_project(
        world.member_a, world.community_a, status="approved", mode=ProjectMode.MENU
    )
    need = api.post("resident_a", f"/api/v1/projects/{project.id}/orders").get_json()
    assert api.post("member_a2", f"/api/v1/needs/{need['id']}/release").status_code == 403
    resp = api.post("member_a", f"/api/v1/needs/{need['id']}/release")
    assert resp.status_code == 200 and resp.get_json()["project_id"] is None


@pytest.mark.parametrize(
    "who, code",
    [
        ("resident_a", 200),
        ("secretary_a", 200),
        ("member_a", 403),
        ("grid_a1", 403),
        ("resident_a2", 404),
    ],
)
def test_who_may_cancel(api, world, unchanged, who, code):
    need = make_need(world.resident_a, world.community_a)
    if code == 200:
        resp = api.post(who, f"/api/v1/needs/{need.id}/cancel")
        assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
        with unchanged():
            assert api.post(who, f"/api/v1/needs/{need.id}/cancel").status_code == 409
            assert api.post("member_a", f"/api/v1/needs/{need.id}/claim").status_code == 409
    else:
        with unchanged():
            assert api.post(who, f"/api/v1/needs/{need.id}/cancel").status_code == code


def test_grid_worker_cancels_what_they_posted(api, world):
    need = api.post(
        "grid_a1", "/api/v1/needs", need_body(world, on_behalf_of=world.resident_a.id)
    ).get_json()
    assert api.post("grid_a1", f"/api/v1/needs/{need['id']}/cancel").status_code == 200


# --- reading ------------------------------------------------------------------


def test_visibility_and_filters(api, world):
    mine = make_need(world.resident_a, world.community_a, title="修水管", category="repair")
    other = make_need(world.resident_a2, world.community_a)
    elsewhere = make_need(world.resident_b, world.community_b)

    def ids(who, **params):
        resp = api.get(who, "/api/v1/needs", **params)
        assert resp.status_code == 200, resp.get_json()
        return sorted(i["id"] for i in resp.get_json()["items"])

    assert ids("resident_a") == [mine.id]
    assert ids("member_a") == sorted([mine.id, other.id])
    assert ids("secretary_a") == sorted([mine.id, other.id])
    assert ids("grid_a1") == sorted([mine.id, other.id])
    assert ids("officer_street") == sorted([mine.id, other.id, elsewhere.id])
    assert ids("officer_other") == []
    assert ids("member_a", category="repair") == [mine.id]
    assert ids("member_a", status="claimed") == []
    assert ids("officer_street", community_id=world.community_b.id) == [elsewhere.id]
    assert api.get("resident_a2", f"/api/v1/needs/{mine.id}").status_code == 404
    assert api.get("member_b", f"/api/v1/needs/{mine.id}").status_code == 404
    assert api.get("member_a", f"/api/v1/needs/{mine.id}").status_code == 200
    resp = api.get("member_a", "/api/v1/needs", status="nope")
    assert resp.status_code == 422 and "status" in problem_fields(resp)


def test_need_is_closed_by_its_delivery(api, world):
    need = make_need(world.resident_a, world.community_a)
    project = make_project(world.member_a, world.community_a, status="approved")
    api.post("member_a", f"/api/v1/needs/{need.id}/claim")
    make_delivery(project, world.member_a, need=need)
    body = api.get("resident_a", f"/api/v1/needs/{need.id}").get_json()
    assert body["status"] == "closed" and body["closed_at"]
    assert api.post("secretary_a", f"/api/v1/needs/{need.id}/release").status_code == 409
