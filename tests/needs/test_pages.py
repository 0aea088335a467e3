"""Needs pages: the board (claim, release, dispatch) and posting a need -- with the
right user, wrong users and bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from volunteer_market.extensions import db
from volunteer_market.models import (
    Need,
    NeedStatus,
)

from ..factories import make_need, make_project
from ..projects.conftest import assert_csp_clean, fresh, post, text


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


@pytest.mark.parametrize("bad", [str(10**20), "2147483648", "²", "٣"])
def test_needs_board_ignores_an_impossible_community_filter(as_user, world, bad):
    make_need(world.resident_a, world.community_a, title="代买药")
    resp = as_user("member_a").get("/needs", query_string={"community_id": bad})
    assert resp.status_code == 200 and "代买药" in text(resp)  # as if there were no filter


@pytest.mark.parametrize("target", [f"member:{10**20}", "project:2147483648", "member:²"])
def test_dispatch_to_an_impossible_id_is_422(as_user, world, unchanged, target):
    need = make_need(world.resident_a, world.community_a)
    with unchanged():
        resp = post(as_user("secretary_a"), f"/needs/{need.id}/dispatch", {"target": target})
    assert resp.status_code == 422


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
